import { InvokeCommand, type InvokeCommandOutput, type LambdaClient } from '@aws-sdk/client-lambda';
import { AwsError, errorFromInvokePayload, FederationError, toFederationError } from '../errors.js';

/** How one function reaches another (the relay: discovery, subscriptions, itself). */
export interface FunctionInvoker {
  /** Asynchronous invocation (`InvocationType: 'Event'`): returns once Lambda has queued it. */
  invokeAsync(functionName: string, payload: unknown): Promise<void>;
  /**
   * Synchronous invocation (`RequestResponse`): the function's result, or its error re-thrown as the
   * typed FederationError it was (a function error payload `{ errorType, errorMessage }`).
   */
  invoke(functionName: string, payload: unknown): Promise<unknown>;
}

/** The real invoker over the Lambda API. */
export class LambdaInvoker implements FunctionInvoker {
  constructor(private readonly client: LambdaClient) {}

  async invokeAsync(functionName: string, payload: unknown): Promise<void> {
    try {
      await this.client.send(
        new InvokeCommand({
          FunctionName: functionName,
          InvocationType: 'Event',
          Payload: Buffer.from(JSON.stringify(payload)),
        }),
      );
    } catch (error) {
      throw toFederationError(error, `Invoke ${functionName}`);
    }
  }

  async invoke(functionName: string, payload: unknown): Promise<unknown> {
    let out: InvokeCommandOutput;
    try {
      out = await this.client.send(
        new InvokeCommand({
          FunctionName: functionName,
          InvocationType: 'RequestResponse',
          Payload: Buffer.from(JSON.stringify(payload)),
        }),
      );
    } catch (error) {
      throw toFederationError(error, `Invoke ${functionName}`);
    }
    const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
    let result: unknown;
    try {
      result = text === '' ? undefined : JSON.parse(text);
    } catch (cause) {
      throw new AwsError(`Invoke ${functionName}: the result is not JSON`, { cause });
    }
    if (out.FunctionError) {
      const { code, message } = errorFromInvokePayload(result, functionName);
      throw new FederationError(code, message);
    }
    return result;
  }
}
