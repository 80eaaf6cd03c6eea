/**
 * A local emulator of the AWS Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`), so the
 * real `@aws-sdk/client-lambda` and `aws lambda invoke --endpoint-url ...` talk to in-process handlers
 * exactly as they would to Lambda. It knows nothing about what the functions do: it takes handlers.
 *
 * Reproduced from the Lambda API reference (Invoke):
 * - `X-Amz-Invocation-Type`: `RequestResponse` (default) → 200 + the JSON result; `Event` → 202, the
 *   handler runs in the background (retried `asyncRetries` times as the function's asynchronous
 *   invocation config would; the last failure is logged, never reported to the caller); `DryRun` → 204.
 * - A function error is still HTTP 200, with `X-Amz-Function-Error: Unhandled` and the payload
 *   `{ errorType, errorMessage, trace }` (errorType = the thrown error's `name`).
 * - Unknown function → 404 `ResourceNotFoundException`; a payload that is not JSON → 400
 *   `InvalidRequestContentException`; over 6 MB → 413 `RequestTooLargeException`. Errors carry
 *   `x-amzn-ErrorType` so the SDK and the CLI raise the typed exception.
 * - The function name may be a name, `name:qualifier`, a partial ARN (`123456789012:function:name`) or a
 *   full ARN; `Qualifier` may also come as a query parameter.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Context } from 'aws-lambda';
import { listen } from './ports.js';

/** A Lambda handler as the emulator calls it: `(event, context)`, async. */
// biome-ignore lint/suspicious/noExplicitAny: Lambda events are whatever JSON the caller sends.
export type LocalLambdaHandler<TEvent = any, TResult = unknown> = (
  event: TEvent,
  context: Context,
) => Promise<TResult>;

/** A function entry: the bare handler, or the handler with its Lambda settings. */
export type LocalFunction =
  | LocalLambdaHandler
  | {
      readonly handler: LocalLambdaHandler;
      readonly timeoutMs?: number;
      readonly memoryMb?: number;
      /**
       * Retries of a failed `Event` invocation, as the function's asynchronous invocation config
       * (`MaximumRetryAttempts`) says; Lambda waits about 1 and then 2 minutes, here `asyncRetryDelaysMs`.
       * The last failure goes to `onAsyncError` (the on-failure destination). Default 0.
       */
      readonly asyncRetries?: number;
      /** Wait before each retry (the last value repeats). Default 1 s, then 2 s. */
      readonly asyncRetryDelaysMs?: readonly number[];
    };

export interface LambdaContextOptions {
  readonly functionName: string;
  readonly region?: string;
  readonly accountId?: string;
  /** Timeout the context reports through `getRemainingTimeInMillis` (and the endpoint enforces). */
  readonly timeoutMs?: number;
  readonly memoryMb?: number;
  readonly awsRequestId?: string;
}

const DEFAULT_REGION = 'us-east-1';
const DEFAULT_ACCOUNT = '123456789012';
/** Lambda's maximum timeout; functions without a configured timeout get it. */
const DEFAULT_TIMEOUT_MS = 900_000;
/** Synchronous invocation payload limit (request and response). */
const MAX_PAYLOAD_BYTES = 6 * 1024 * 1024;

/** A Lambda-like `context` for one invocation (what the Node.js runtime passes as the second argument). */
export function createLambdaContext(options: LambdaContextOptions): Context {
  const region = options.region ?? DEFAULT_REGION;
  const accountId = options.accountId ?? DEFAULT_ACCOUNT;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  const awsRequestId = options.awsRequestId ?? randomUUID();
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
  const unsupported = (what: string) => () => {
    throw new Error(
      `context.${what}() is not supported by the local Lambda emulator; return or throw instead`,
    );
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: options.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:${accountId}:function:${options.functionName}`,
    memoryLimitInMB: String(options.memoryMb ?? 128),
    awsRequestId,
    logGroupName: `/aws/lambda/${options.functionName}`,
    logStreamName: `${day}/[$LATEST]${randomUUID().replaceAll('-', '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported('done'),
    fail: unsupported('fail'),
    succeed: unsupported('succeed'),
  };
}

/** The payload Lambda returns for an unhandled function error. */
export interface LambdaFunctionErrorPayload {
  readonly errorType: string;
  readonly errorMessage: string;
  readonly trace: string[];
}

/** Shapes a thrown value the way the Lambda Node.js runtime reports it (`errorType` = the error's name). */
export function toFunctionErrorPayload(error: unknown): LambdaFunctionErrorPayload {
  if (error instanceof Error) {
    return { errorType: error.name || 'Error', errorMessage: error.message, trace: [] };
  }
  return { errorType: typeof error, errorMessage: String(error), trace: [] };
}

export interface LambdaEndpointOptions {
  readonly port: number;
  readonly host?: string;
  readonly functions: Readonly<Record<string, LocalFunction>>;
  readonly region?: string;
  readonly accountId?: string;
  /** Named in the error when the port is taken, e.g. `'--lambda-port / FED_LAMBDA_PORT'`. */
  readonly portHint?: string;
  /** Where failures of `Event` (asynchronous) invocations are reported; default `console.error`. */
  readonly onAsyncError?: (functionName: string, error: unknown) => void;
}

export interface LambdaEndpoint {
  /** `http://host:port`: pass it as `endpoint` to the SDK or `--endpoint-url` to the CLI. */
  readonly url: string;
  readonly port: number;
  /** Resolves when every invocation in flight (including `Event` ones) has finished. */
  idle(): Promise<void>;
  /** Stops accepting requests and closes the server (in-flight invocations are not awaited). */
  close(): Promise<void>;
}

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations\/?$/;
const FUNCTION_NAME = /^[a-zA-Z0-9-_]+$/;

/** Resolves `name`, `name:qualifier`, `account:function:name[:q]` or a full ARN to the function name. */
export function parseFunctionName(raw: string): { name: string; qualifier?: string } | undefined {
  const parts = raw.split(':');
  let name: string | undefined;
  let qualifier: string | undefined;
  if (parts[0] === 'arn') {
    // arn:aws:lambda:region:account:function:name[:qualifier]
    if (parts.length < 7 || parts.length > 8 || parts[2] !== 'lambda' || parts[5] !== 'function')
      return undefined;
    name = parts[6];
    qualifier = parts[7];
  } else if (parts.length >= 3 && parts[1] === 'function') {
    if (parts.length > 4) return undefined;
    name = parts[2];
    qualifier = parts[3];
  } else if (parts.length <= 2) {
    name = parts[0];
    qualifier = parts[1];
  }
  if (!name || !FUNCTION_NAME.test(name)) return undefined;
  return qualifier === undefined ? { name } : { name, qualifier };
}

function readBody(request: IncomingMessage, limit: number): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      else chunks.push(chunk);
    });
    request.on('end', () => resolve(tooLarge ? 'too-large' : Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function sendError(
  response: ServerResponse,
  status: number,
  type: string,
  message: string,
  requestId: string,
) {
  const body = JSON.stringify({ Type: 'User', message });
  response.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    'x-amzn-ErrorType': type,
    'x-amzn-RequestId': requestId,
  });
  response.end(body);
}

class TimeoutError extends Error {
  override readonly name = 'Sandbox.Timedout';
}

/** Starts the Lambda Invoke endpoint. Rejects with `PortInUseError` when the port is taken. */
export async function startLambdaEndpoint(options: LambdaEndpointOptions): Promise<LambdaEndpoint> {
  const host = options.host ?? '127.0.0.1';
  const region = options.region ?? DEFAULT_REGION;
  const accountId = options.accountId ?? DEFAULT_ACCOUNT;
  const onAsyncError =
    options.onAsyncError ??
    ((name: string, error: unknown) => {
      console.error(`[lambda ${name}] asynchronous invocation failed:`, error);
    });
  const inFlight = new Set<Promise<unknown>>();

  const run = (name: string, fn: LocalFunction, event: unknown, requestId: string): Promise<unknown> => {
    const handler = typeof fn === 'function' ? fn : fn.handler;
    const timeoutMs = typeof fn === 'function' ? undefined : fn.timeoutMs;
    const memoryMb = typeof fn === 'function' ? undefined : fn.memoryMb;
    const context = createLambdaContext({
      functionName: name,
      region,
      accountId,
      awsRequestId: requestId,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(memoryMb === undefined ? {} : { memoryMb }),
    });
    const invocation = Promise.resolve().then(() => handler(event, context));
    let timer: NodeJS.Timeout | undefined;
    const limited =
      timeoutMs === undefined
        ? invocation
        : Promise.race([
            invocation,
            new Promise<never>((_, reject) => {
              timer = setTimeout(
                () =>
                  reject(
                    new TimeoutError(
                      `RequestId: ${requestId} Error: Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`,
                    ),
                  ),
                timeoutMs,
              );
            }),
          ]);
    const tracked = limited.finally(() => {
      clearTimeout(timer);
      inFlight.delete(tracked);
    });
    inFlight.add(tracked);
    // The caller handles the rejection; this copy only keeps `idle()` from seeing an unhandled one.
    tracked.catch(() => undefined);
    return tracked;
  };

  /**
   * An `Event` invocation with the function's retries. The whole of it, waits between attempts
   * included, is in flight from the moment it is accepted: `idle()` resolves only after the last
   * attempt (tracking each attempt alone left a moment between two in which nothing was).
   */
  const runAsync = (name: string, fn: LocalFunction, event: unknown, requestId: string) => {
    const retries = typeof fn === 'function' ? 0 : (fn.asyncRetries ?? 0);
    const delays = (typeof fn === 'function' ? undefined : fn.asyncRetryDelaysMs) ?? [1_000, 2_000];
    const attempts = async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await run(name, fn, event, requestId);
        } catch (error) {
          if (attempt >= retries) throw error;
          const delay = delays[Math.min(attempt, delays.length - 1)] ?? 0;
          await new Promise<void>((resolve) => setTimeout(resolve, delay));
        }
      }
    };
    const tracked: Promise<unknown> = attempts().finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
    return tracked;
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const requestId = randomUUID();
    const url = new URL(request.url ?? '/', 'http://localhost');
    const match = INVOKE_PATH.exec(url.pathname);
    if (!match || request.method !== 'POST') {
      sendError(
        response,
        404,
        'UnknownOperationException',
        `No such operation: ${request.method} ${url.pathname}`,
        requestId,
      );
      return;
    }
    const rawName = decodeURIComponent(match[1] ?? '');
    const parsed = parseFunctionName(rawName);
    if (!parsed) {
      sendError(
        response,
        400,
        'ValidationException',
        `1 validation error detected: Value '${rawName}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?`,
        requestId,
      );
      return;
    }
    const qualifier = parsed.qualifier ?? url.searchParams.get('Qualifier') ?? undefined;
    const fn = Object.hasOwn(options.functions, parsed.name) ? options.functions[parsed.name] : undefined;
    const arn = `arn:aws:lambda:${region}:${accountId}:function:${parsed.name}${qualifier ? `:${qualifier}` : ''}`;
    if (!fn || (qualifier !== undefined && qualifier !== '$LATEST')) {
      sendError(response, 404, 'ResourceNotFoundException', `Function not found: ${arn}`, requestId);
      return;
    }
    const body = await readBody(request, MAX_PAYLOAD_BYTES);
    if (body === 'too-large') {
      sendError(
        response,
        413,
        'RequestTooLargeException',
        `Request must be smaller than ${MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation`,
        requestId,
      );
      return;
    }
    let event: unknown = {};
    const text = body.toString('utf8');
    if (text.trim() !== '') {
      try {
        event = JSON.parse(text);
      } catch (error) {
        sendError(
          response,
          400,
          'InvalidRequestContentException',
          `Could not parse request body into json: ${(error as Error).message}`,
          requestId,
        );
        return;
      }
    }
    const invocationType = String(request.headers['x-amz-invocation-type'] ?? 'RequestResponse');
    const common = { 'x-amzn-RequestId': requestId };
    switch (invocationType) {
      case 'DryRun':
        response.writeHead(204, common);
        response.end();
        return;
      case 'Event':
        runAsync(parsed.name, fn, event, requestId).catch((error: unknown) =>
          onAsyncError(parsed.name, error),
        );
        response.writeHead(202, { ...common, 'Content-Length': 0 });
        response.end();
        return;
      case 'RequestResponse':
        break;
      default:
        sendError(
          response,
          400,
          'InvalidParameterValueException',
          `Unsupported invocation type: ${invocationType}`,
          requestId,
        );
        return;
    }
    let payload: string;
    let functionError = false;
    try {
      const result = await run(parsed.name, fn, event, requestId);
      payload = JSON.stringify(result === undefined ? null : result);
      if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) {
        functionError = true;
        payload = JSON.stringify({
          errorType: 'Function.ResponseSizeTooLarge',
          errorMessage: `Response payload size exceeded maximum allowed payload size (${MAX_PAYLOAD_BYTES} bytes).`,
        });
      }
    } catch (error) {
      functionError = true;
      payload = JSON.stringify(toFunctionErrorPayload(error));
    }
    const headers: Record<string, string | number> = {
      ...common,
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(payload),
      'X-Amz-Executed-Version': '$LATEST',
    };
    if (functionError) headers['X-Amz-Function-Error'] = 'Unhandled';
    if (request.headers['x-amz-log-type'] === 'Tail') {
      const log = `START RequestId: ${requestId} Version: $LATEST\nEND RequestId: ${requestId}\nREPORT RequestId: ${requestId}\n`;
      headers['X-Amz-Log-Result'] = Buffer.from(log).toString('base64');
    }
    response.writeHead(200, headers);
    response.end(payload);
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) {
        sendError(
          response,
          500,
          'ServiceException',
          `Local Lambda endpoint failure: ${String(error)}`,
          randomUUID(),
        );
      } else response.destroy();
    });
  });
  const port = await listen(server, options.port, host, 'Lambda Invoke endpoint', options.portHint);
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}`,
    port,
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}
