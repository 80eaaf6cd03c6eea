import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { InvokeCommand, LambdaClient, ResourceNotFoundException } from '@aws-sdk/client-lambda';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LambdaEndpoint, parseFunctionName, startLambdaEndpoint } from '../../local/lambda-endpoint.js';
import { PortInUseError } from '../../local/ports.js';

const run = promisify(execFile);

class SubscriptionConflictError extends Error {
  override readonly name = 'SubscriptionConflictError';
}

const received: Array<{ event: unknown; context: Context }> = [];
const asyncErrors: Array<{ name: string; error: unknown }> = [];
const backgroundRuns: unknown[] = [];
const retriedAttempts = new Map<string, number>();
const retriedDone: string[] = [];
let release: () => void = () => undefined;
const gate = new Promise<void>((resolve) => {
  release = resolve;
});
let active = 0;
let maxActive = 0;
let endpoint: LambdaEndpoint;
let lambda: LambdaClient;

const decode = (payload: Uint8Array | undefined) => JSON.parse(Buffer.from(payload ?? []).toString('utf8'));

beforeAll(async () => {
  endpoint = await startLambdaEndpoint({
    port: 0,
    functions: {
      echo: async (event, context) => {
        received.push({ event, context });
        return {
          echoed: event,
          functionName: context.functionName,
          remaining: context.getRemainingTimeInMillis(),
        };
      },
      conflict: async () => {
        throw new SubscriptionConflictError('plan p1 already has a key for application app-1');
      },
      background: async (event) => {
        backgroundRuns.push(event);
        return 'ignored';
      },
      failingBackground: async () => {
        throw new Error('background boom');
      },
      gated: async (event: { n: number }) => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        if (active === 5) release();
        await gate;
        active -= 1;
        return event.n;
      },
      nothing: async () => undefined,
      // Fails its first attempt; Lambda's asynchronous retry (no delay here) succeeds.
      retried: {
        handler: async (event: { id: string }) => {
          const attempt = (retriedAttempts.get(event.id) ?? 0) + 1;
          retriedAttempts.set(event.id, attempt);
          if (attempt === 1) throw new Error('first attempt fails');
          retriedDone.push(event.id);
        },
        asyncRetries: 2,
        asyncRetryDelaysMs: [0],
      },
      slow: { handler: () => new Promise(() => undefined), timeoutMs: 200 },
    },
    onAsyncError: (name, error) => asyncErrors.push({ name, error }),
  });
  lambda = new LambdaClient({
    endpoint: endpoint.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 1,
  });
});

afterAll(async () => {
  lambda?.destroy();
  await endpoint?.close();
});

describe('Lambda Invoke endpoint with the real @aws-sdk/client-lambda', () => {
  it('answers a RequestResponse invocation with the handler result and a Lambda-like context', async () => {
    const response = await lambda.send(
      new InvokeCommand({
        FunctionName: 'echo',
        Payload: Buffer.from(JSON.stringify({ action: 'get', id: 'x' })),
      }),
    );
    expect(response.StatusCode).toBe(200);
    expect(response.FunctionError).toBeUndefined();
    expect(response.ExecutedVersion).toBe('$LATEST');
    const payload = decode(response.Payload);
    expect(payload.echoed).toEqual({ action: 'get', id: 'x' });
    expect(payload.functionName).toBe('echo');
    expect(payload.remaining).toBeGreaterThan(0);
    const last = received.at(-1)!;
    expect(last.context.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(last.context.invokedFunctionArn).toBe('arn:aws:lambda:us-east-1:123456789012:function:echo');
  });

  it('resolves the function from a full ARN and from a partial ARN', async () => {
    for (const name of [
      'arn:aws:lambda:us-east-1:123456789012:function:echo',
      '123456789012:function:echo',
    ]) {
      const response = await lambda.send(
        new InvokeCommand({ FunctionName: name, Payload: Buffer.from('{"n":1}') }),
      );
      expect(decode(response.Payload).echoed).toEqual({ n: 1 });
    }
  });

  it('passes {} when the payload is empty and returns null for an undefined result', async () => {
    await lambda.send(new InvokeCommand({ FunctionName: 'echo' }));
    expect(received.at(-1)!.event).toEqual({});
    const response = await lambda.send(new InvokeCommand({ FunctionName: 'nothing' }));
    expect(Buffer.from(response.Payload ?? []).toString()).toBe('null');
  });

  it('reports a thrown error as an Unhandled function error with errorType = the error name', async () => {
    const response = await lambda.send(
      new InvokeCommand({ FunctionName: 'conflict', Payload: Buffer.from('{}') }),
    );
    expect(response.StatusCode).toBe(200);
    expect(response.FunctionError).toBe('Unhandled');
    expect(decode(response.Payload)).toEqual({
      errorType: 'SubscriptionConflictError',
      errorMessage: 'plan p1 already has a key for application app-1',
      trace: [],
    });
  });

  it('rejects an unknown function with a typed ResourceNotFoundException', async () => {
    const error = await lambda
      .send(new InvokeCommand({ FunctionName: 'does-not-exist', Payload: Buffer.from('{}') }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResourceNotFoundException);
    expect((error as Error).message).toContain('function:does-not-exist');
    expect((error as ResourceNotFoundException).$metadata.httpStatusCode).toBe(404);
  });

  it('rejects a payload that is not JSON with InvalidRequestContentException', async () => {
    const error = await lambda
      .send(new InvokeCommand({ FunctionName: 'echo', Payload: Buffer.from('{not json') }))
      .catch((e: unknown) => e);
    expect((error as Error).name).toBe('InvalidRequestContentException');
    expect((error as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(400);
  });

  it('answers an Event invocation with 202 and runs the handler in the background', async () => {
    const before = backgroundRuns.length;
    const response = await lambda.send(
      new InvokeCommand({
        FunctionName: 'background',
        InvocationType: 'Event',
        Payload: Buffer.from('{"run":1}'),
      }),
    );
    expect(response.StatusCode).toBe(202);
    expect(Buffer.from(response.Payload ?? []).length).toBe(0);
    await endpoint.idle();
    expect(backgroundRuns.slice(before)).toEqual([{ run: 1 }]);
  });

  it('reports a failing Event invocation to onAsyncError, not to the caller', async () => {
    const response = await lambda.send(
      new InvokeCommand({
        FunctionName: 'failingBackground',
        InvocationType: 'Event',
        Payload: Buffer.from('{}'),
      }),
    );
    expect(response.StatusCode).toBe(202);
    expect(response.FunctionError).toBeUndefined();
    await endpoint.idle();
    expect(asyncErrors.map((e) => [e.name, (e.error as Error).message])).toEqual([
      ['failingBackground', 'background boom'],
    ]);
  });

  it('idle() waits for every retry of an Event invocation, the moments between attempts included', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `e${i}`);
    for (const id of ids) {
      await lambda.send(
        new InvokeCommand({
          FunctionName: 'retried',
          InvocationType: 'Event',
          Payload: Buffer.from(JSON.stringify({ id })),
        }),
      );
    }
    await endpoint.idle();
    expect([...retriedDone].sort()).toEqual([...ids].sort());
  });

  it('answers a DryRun with 204 without running the handler', async () => {
    const before = received.length;
    const response = await lambda.send(
      new InvokeCommand({ FunctionName: 'echo', InvocationType: 'DryRun', Payload: Buffer.from('{}') }),
    );
    expect(response.StatusCode).toBe(204);
    expect(received.length).toBe(before);
  });

  it('runs invocations concurrently (no global serialisation)', async () => {
    const calls = [1, 2, 3, 4, 5].map((n) =>
      lambda.send(new InvokeCommand({ FunctionName: 'gated', Payload: Buffer.from(JSON.stringify({ n })) })),
    );
    // The gate opens only once all five are in flight at once; a serialising endpoint never gets there.
    const timeout = new Promise<'serialised'>((resolve) => setTimeout(() => resolve('serialised'), 5_000));
    const results = await Promise.race([Promise.all(calls), timeout]);
    release();
    expect(results).not.toBe('serialised');
    expect(maxActive).toBe(5);
    expect((results as Awaited<(typeof calls)[number]>[]).map((r) => decode(r.Payload))).toEqual([
      1, 2, 3, 4, 5,
    ]);
  });

  it('times a function out after its configured timeout like Lambda', async () => {
    const response = await lambda.send(
      new InvokeCommand({ FunctionName: 'slow', Payload: Buffer.from('{}') }),
    );
    expect(response.FunctionError).toBe('Unhandled');
    const payload = decode(response.Payload);
    expect(payload.errorType).toBe('Sandbox.Timedout');
    expect(payload.errorMessage).toContain('Task timed out after 0.20 seconds');
  });
});

describe('Lambda Invoke endpoint with the aws CLI', () => {
  let dir: string;
  let binaryFormatFlag: string[] = [];
  const env = {
    ...process.env,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_REGION: 'us-east-1',
    AWS_PAGER: '',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lambda-cli-'));
    const { stdout, stderr } = await run('aws', ['--version'], { env });
    // `--cli-binary-format` exists only in AWS CLI v2; v1 sends --payload as raw JSON already.
    if (/aws-cli\/2\./.test(stdout + stderr)) binaryFormatFlag = ['--cli-binary-format', 'raw-in-base64-out'];
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const invoke = async (functionName: string, payload: string) => {
    const out = join(dir, `${functionName}-${Date.now()}.json`);
    const { stdout } = await run(
      'aws',
      [
        'lambda',
        'invoke',
        '--endpoint-url',
        endpoint.url,
        '--function-name',
        functionName,
        ...binaryFormatFlag,
        '--payload',
        payload,
        out,
      ],
      { env },
    );
    return { summary: JSON.parse(stdout), result: JSON.parse(await readFile(out, 'utf8')) };
  };

  it('invokes a function and writes its result to the outfile', async () => {
    const { summary, result } = await invoke('echo', '{"action":"subscribe","apiId":"a1"}');
    expect(summary.StatusCode).toBe(200);
    expect(summary.FunctionError).toBeUndefined();
    expect(result.echoed).toEqual({ action: 'subscribe', apiId: 'a1' });
  });

  it('reports a function error the way Lambda does', async () => {
    const { summary, result } = await invoke('conflict', '{"action":"subscribe"}');
    expect(summary).toMatchObject({ StatusCode: 200, FunctionError: 'Unhandled' });
    expect(result).toEqual({
      errorType: 'SubscriptionConflictError',
      errorMessage: 'plan p1 already has a key for application app-1',
      trace: [],
    });
  });

  it('fails with ResourceNotFoundException for an unknown function', async () => {
    const error = await invoke('nope', '{}').catch((e: unknown) => e as { stderr: string; code: number });
    expect((error as { code: number }).code).not.toBe(0);
    expect((error as { stderr: string }).stderr).toContain('ResourceNotFoundException');
  });
});

describe('Lambda Invoke endpoint startup and names', () => {
  it('fails with a clear error naming the port and the flag when the port is taken', async () => {
    const error = await startLambdaEndpoint({
      port: endpoint.port,
      functions: {},
      portHint: '--lambda-port / FED_LAMBDA_PORT',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PortInUseError);
    expect((error as Error).message).toBe(
      `Lambda Invoke endpoint cannot listen on 127.0.0.1:${endpoint.port}: the port is already in use. ` +
        'Choose another port with --lambda-port / FED_LAMBDA_PORT.',
    );
  });

  it('parses names, qualifiers and ARNs, and rejects malformed ones', () => {
    expect(parseFunctionName('subscriptions')).toEqual({ name: 'subscriptions' });
    expect(parseFunctionName('subscriptions:$LATEST')).toEqual({
      name: 'subscriptions',
      qualifier: '$LATEST',
    });
    expect(parseFunctionName('arn:aws:lambda:eu-west-1:111122223333:function:discovery:prod')).toEqual({
      name: 'discovery',
      qualifier: 'prod',
    });
    expect(parseFunctionName('arn:aws:s3:::bucket')).toBeUndefined();
    expect(parseFunctionName('has space')).toBeUndefined();
  });
});
