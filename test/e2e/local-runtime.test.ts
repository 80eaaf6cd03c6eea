/**
 * End to end: `npm start`'s runtime as a child process (`tsx local/start.ts`, the tsx `npx tsx` runs: npm
 * itself would turn the child's exit code into "killed by SIGTERM") on free ports, its own
 * moto, a control plane over a real WebSocket (the reference client), subscriptions through the relay and
 * through the Lambda Invoke endpoint, API Gateway state checked in moto, then SIGTERM and a clean exit.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import {
  APIGatewayClient,
  CreateDeploymentCommand,
  GetApiKeyCommand,
  GetUsagePlanKeysCommand,
} from '@aws-sdk/client-api-gateway';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CatalogApi, ControlPlaneClient } from '../../client/control-plane-client.js';
import { freePort } from '../../local/ports.js';
import {
  type RuntimeProcess,
  startRuntimeProcess,
  stopRuntimeProcess,
  waitForOutput,
} from '../support/runtime-process.js';

const CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

/** Pids of live moto servers listening on `port` (by their command line). */
function motoProcesses(port: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (/\) Z /.test(stat)) continue; // a zombie is gone, just not reaped yet
      const index = cmdline.indexOf('-p');
      if (cmdline.join(' ').includes('moto') && index >= 0 && cmdline[index + 1] === port)
        pids.push(Number(entry));
    } catch {
      // the process went away while we looked
    }
  }
  return pids;
}

describe('npm start (local runtime as a child process)', () => {
  let runtime: RuntimeProcess;
  let relayPort: number;
  let awsPort: number;
  let lambdaPort: number;
  let relayUrl: string;
  let token: string;
  let motoEndpoint: string;
  let motoPort: string;
  let client: ControlPlaneClient;
  let apiGateway: APIGatewayClient;
  /** Through the runtime's AWS endpoint (the fidelity proxy): API Gateway as AWS answers it. */
  let awsApiGateway: APIGatewayClient;

  beforeAll(async () => {
    relayPort = await freePort();
    lambdaPort = await freePort();
    awsPort = await freePort();
    runtime = startRuntimeProcess([
      '--aws-port',
      String(awsPort),
      '--relay-port',
      String(relayPort),
      '--lambda-port',
      String(lambdaPort),
      '--schedule-seconds',
      '0',
    ]);
    await waitForOutput(runtime, /^ready in /m, 110_000);
    relayUrl = (await waitForOutput(runtime, /^Relay \(WebSocket API\):\s+(\S+)/m, 1))[1]!;
    token = (await waitForOutput(runtime, /^Relay token:\s+(\S+)/m, 1))[1]!;
    motoEndpoint = (await waitForOutput(runtime, /in front of moto at (http:\/\/127\.0\.0\.1:(\d+))/, 1))[1]!;
    motoPort = new URL(motoEndpoint).port;
    apiGateway = new APIGatewayClient({
      endpoint: motoEndpoint,
      region: 'us-east-1',
      credentials: CREDENTIALS,
    });
    const awsEndpoint = (await waitForOutput(runtime, /^AWS endpoint:\s+(\S+)/m, 1))[1]!;
    awsApiGateway = new APIGatewayClient({
      endpoint: awsEndpoint,
      region: 'us-east-1',
      credentials: CREDENTIALS,
    });
  }, 120_000);

  afterAll(async () => {
    await client?.close();
    apiGateway?.destroy();
    awsApiGateway?.destroy();
    await stopRuntimeProcess(runtime);
  });

  it('prints progress, the discovered APIs, the relay URL, the token and the commands', () => {
    const out = runtime.stdout();
    expect(out).toContain('starting moto');
    expect(out).toContain('seeding 5 demo REST APIs');
    expect(out).toContain('running the first discovery');
    expect(out).toMatch(/Discovered 7 federated APIs/);
    expect(out).toMatch(
      /Petstore\s+prod\s+Gold \(500 rps, 10000000\/month\), Silver \(50 rps, 100000\/week\)/,
    );
    expect(out).not.toMatch(/Internal Audit/); // on no usage plan: not federated by default
    expect(relayUrl).toBe(`ws://127.0.0.1:${relayPort}/local`);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(out).toContain(`npx apigw-fed connect --url ${relayUrl} --token ${token}`);
    expect(out).toContain(`aws lambda invoke --endpoint-url http://127.0.0.1:${lambdaPort}`);
    expect(out).toContain('--cli-binary-format raw-in-base64-out');
  });

  it('refuses a WebSocket connection with a wrong token', async () => {
    const intruder = new ControlPlaneClient({ url: relayUrl, token: 'not-the-token', reconnect: false });
    await expect(intruder.connect()).rejects.toThrow(/403|refused|Forbidden/i);
    await intruder.close();
  });

  it('serves the catalog over a real WebSocket with the printed token (sync snapshot)', async () => {
    client = new ControlPlaneClient({ url: relayUrl, token, reconnect: false });
    await client.connect();
    const apis = [...client.catalog.values()];
    expect(apis.map((api) => `${api.name}/${api.version}`).sort()).toEqual([
      'Inventory/prod',
      'Orders/dev',
      'Orders/prod',
      'Payments/dev',
      'Payments/prod',
      'Petstore/dev',
      'Petstore/prod',
    ]);
    const petstore = apis.find((api) => api.name === 'Petstore' && api.version === 'prod');
    expect(petstore?.plans.map((plan) => plan.name).sort()).toEqual(['Gold', 'Silver']);
  });

  const petstoreProd = (): { api: CatalogApi; plan: CatalogApi['plans'][number] } => {
    const api = [...client.catalog.values()].find((a) => a.name === 'Petstore' && a.version === 'prod');
    const plan = api?.plans.find((p) => p.name === 'Gold');
    if (!api || !plan) throw new Error('Petstore prod / Gold is not in the catalog');
    return { api, plan };
  };

  const keysOnPlan = async (usagePlanId: string, client = apiGateway): Promise<string[]> => {
    const out = await client.send(new GetUsagePlanKeysCommand({ usagePlanId, limit: 500 }));
    return (out.items ?? []).map((key) => key.id!);
  };

  it('a create-deployment through the printed AWS endpoint reaches the client as api.upserted, without a discovery invoke', async () => {
    const out = runtime.stdout();
    const command =
      /aws apigateway create-deployment --endpoint-url (\S+) --region us-east-1 \\\n\s+--rest-api-id (\S+) --stage-name (\S+)/.exec(
        out,
      );
    expect(command?.[1]).toBe(`http://127.0.0.1:${awsPort}`);
    const [, , restApiId, stageName] = command!;
    const before = [...client.catalog.values()].find(
      (api) => (api.source as { restApiId?: string }).restApiId === restApiId && api.version === stageName,
    );
    expect(before).toBeDefined();
    const upserted = new Promise<{ payload: { id: string; source: { deploymentId: string } } }>((resolve) => {
      const onEvent = (e: { event: string; payload: { id: string; source: { deploymentId: string } } }) => {
        if (e.event === 'api.upserted' && e.payload.id === before!.id) {
          client.off('event', onEvent);
          resolve(e);
        }
      };
      client.on('event', onEvent);
    });
    const completed = new Promise<{ payload: { targeted?: boolean } }>((resolve) => {
      const onEvent = (e: { event: string; payload: { targeted?: boolean } }) => {
        if (e.event === 'discovery.completed') {
          client.off('event', onEvent);
          resolve(e);
        }
      };
      client.on('event', onEvent);
    });
    // The printed command, made with the SDK (the same request the AWS CLI sends).
    const deployment = await awsApiGateway.send(new CreateDeploymentCommand({ restApiId, stageName }));
    const event = await upserted;
    expect(event.payload.source.deploymentId).toBe(deployment.id);
    expect((await completed).payload.targeted).toBe(true);
    expect(runtime.stdout()).not.toMatch(/discovery: \d+ API\(s\) added or changed/);
  });

  it('subscribes and unsubscribes through the relay: the key lands on the usage plan, then is deleted', async () => {
    const { api, plan } = petstoreProd();
    const reply = await client.request({
      action: 'subscribe',
      subscriptionId: 'e2e-relay-1',
      apiId: api.id,
      planId: plan.id,
      application: { id: 'app-e2e', name: 'E2E application' },
    });
    expect(reply.status, JSON.stringify(reply.error)).toBe('SUCCEEDED');
    const payload = reply.payload as {
      status: string;
      apiKeyId: string;
      apiKey: string;
      usagePlanId: string;
    };
    expect(payload).toMatchObject({ status: 'ACTIVE', usagePlanId: plan.usagePlanId });
    expect(await keysOnPlan(plan.usagePlanId)).toContain(payload.apiKeyId);
    const key = await apiGateway.send(new GetApiKeyCommand({ apiKey: payload.apiKeyId, includeValue: true }));
    expect(key.value).toBe(payload.apiKey);

    const revoked = await client.request({ action: 'unsubscribe', subscriptionId: 'e2e-relay-1' });
    expect(revoked.status, JSON.stringify(revoked.error)).toBe('SUCCEEDED');
    expect(revoked.payload).toMatchObject({ subscriptionId: 'e2e-relay-1', status: 'REVOKED' });
    await expect(apiGateway.send(new GetApiKeyCommand({ apiKey: payload.apiKeyId }))).rejects.toMatchObject({
      name: 'NotFoundException',
    });
    // the usage plan's key list as API Gateway answers it (moto itself keeps a deleted key's link; the proxy does not)
    expect(await keysOnPlan(plan.usagePlanId, awsApiGateway)).not.toContain(payload.apiKeyId);
  });

  it('subscribes and unsubscribes through the Lambda Invoke endpoint with the real client-lambda', async () => {
    const { api, plan } = petstoreProd();
    const lambda = new LambdaClient({
      endpoint: `http://127.0.0.1:${lambdaPort}`,
      region: 'us-east-1',
      credentials: CREDENTIALS,
    });
    const invoke = async (payload: unknown) => {
      const out = await lambda.send(
        new InvokeCommand({ FunctionName: 'subscriptions', Payload: Buffer.from(JSON.stringify(payload)) }),
      );
      return { error: out.FunctionError, result: JSON.parse(Buffer.from(out.Payload!).toString('utf8')) };
    };
    try {
      const subscribed = await invoke({
        action: 'subscribe',
        subscriptionId: 'e2e-invoke-1',
        apiId: api.id,
        planId: plan.id,
        application: { id: 'app-ops', name: 'Operator application' },
      });
      expect(subscribed.error, JSON.stringify(subscribed.result)).toBeUndefined();
      expect(subscribed.result).toMatchObject({ status: 'ACTIVE', usagePlanId: plan.usagePlanId });
      expect(await keysOnPlan(plan.usagePlanId)).toContain(subscribed.result.apiKeyId);

      const unknownPlan = await invoke({
        action: 'subscribe',
        subscriptionId: 'e2e-invoke-2',
        apiId: api.id,
        planId: 'no-such-plan',
        application: { id: 'app-ops', name: 'Operator application' },
      });
      expect(unknownPlan.error).toBe('Unhandled');
      expect(unknownPlan.result.errorMessage).toMatch(/^NOT_FOUND: /);

      const revoked = await invoke({ action: 'unsubscribe', subscriptionId: 'e2e-invoke-1' });
      expect(revoked.error, JSON.stringify(revoked.result)).toBeUndefined();
      expect(revoked.result).toEqual({ subscriptionId: 'e2e-invoke-1', status: 'REVOKED' });
      await expect(
        apiGateway.send(new GetApiKeyCommand({ apiKey: subscribed.result.apiKeyId })),
      ).rejects.toMatchObject({ name: 'NotFoundException' });
      expect(await keysOnPlan(plan.usagePlanId, awsApiGateway)).not.toContain(subscribed.result.apiKeyId);
    } finally {
      lambda.destroy();
    }
  });

  it('runs discovery asynchronously for the discover command (Event invocation through the Lambda endpoint)', async () => {
    // relay-command invokes discovery with InvocationType Event; discovery replies when its run is done
    const reply = await client.request({ action: 'discover' }, { timeoutMs: 60_000 });
    expect(reply.status, JSON.stringify(reply.error)).toBe('SUCCEEDED');
    expect(reply.payload).toMatchObject({ partial: false, counts: { discovered: 7, removed: 0 } });
  });

  it('stops cleanly on SIGTERM: exit code 0, moto gone, ports free', async () => {
    await client.close();
    expect(motoProcesses(motoPort).length).toBeGreaterThan(0);
    runtime.child.kill('SIGTERM');
    const { code, signal } = await runtime.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(runtime.stdout()).toMatch(/SIGTERM received: stopping\.\.\.\n[\s\S]*stopped\.\n/);
    // moto is the runtime's child: after the exit, no process with its port remains
    const deadline = Date.now() + 5_000;
    while (motoProcesses(motoPort).length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(motoProcesses(motoPort)).toEqual([]);
    for (const port of [relayPort, lambdaPort]) {
      await expect(canListen(port)).resolves.toBe(true);
    }
  });
});

function canListen(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

describe('npm start with a port in use', () => {
  it('fails fast with a message naming --relay-port and exit code 1', async () => {
    const blocker = createServer();
    const port = await new Promise<number>((done) =>
      blocker.listen(0, '127.0.0.1', () => done((blocker.address() as { port: number }).port)),
    );
    try {
      const lambdaPort = await freePort();
      const started = startRuntimeProcess([
        '--relay-port',
        String(port),
        '--lambda-port',
        String(lambdaPort),
      ]);
      const { code } = await Promise.race([
        started.exited,
        new Promise<never>((_, fail) =>
          setTimeout(() => fail(new Error('did not fail fast')), 30_000).unref(),
        ),
      ]).finally(() => stopRuntimeProcess(started));
      expect(code).toBe(1);
      expect(started.stderr()).toContain(`127.0.0.1:${port}: the port is already in use`);
      expect(started.stderr()).toContain('--relay-port');
      expect(started.stdout()).not.toContain('starting moto'); // failed before starting anything slow
    } finally {
      await new Promise<void>((done) => blocker.close(() => done()));
    }
  }, 60_000);

  it('rejects a bad flag with the usage and exit code 2', async () => {
    const started = startRuntimeProcess(['--relay-port', 'eighty']);
    const { code } = await started.exited;
    expect(code).toBe(2);
    expect(started.stderr()).toContain('--relay-port: expected a port number');
    expect(started.stderr()).toContain('usage: npm start');
  }, 60_000);
});
