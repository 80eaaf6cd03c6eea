/**
 * `npm start` against the user's own AWS endpoint (`AWS_ENDPOINT_URL`). The endpoint is built here as a
 * user's would be: moto with a fidelity proxy in front that behaves like API Gateway (pages list calls at
 * 500 with `position`, answers `oas30` exports itself) and, in the second suite, throttles at 10 requests/s
 * with 429 and `Retry-After`. Its call log is what reached the user's endpoint.
 *
 * The agent's calls must reach it as they are made: every REST API discovered (600+, past the upstream's
 * first page), exactly the theoretical minimum of API Gateway calls, upstream throttles seen and retried by
 * the agent itself (never turned into another error), and subscriptions, the relay (`@connections`) and the
 * Lambda Invoke path (`discover`) working as with the built-in moto.
 */
import {
  APIGatewayClient,
  CreateDeploymentCommand,
  GetApiKeyCommand,
  GetUsagePlanKeysCommand,
} from '@aws-sdk/client-api-gateway';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CatalogApi, ControlPlaneClient } from '../../client/control-plane-client.js';
import { type MotoServer, startMoto } from '../../emulator/moto.js';
import { type FidelityProxy, startFidelityProxy } from '../../emulator/proxy.js';
import { demoSeed, generateSeed, seed } from '../../emulator/seeder.js';
import { freePort } from '../../local/ports.js';
import {
  type RuntimeProcess,
  runtimeEnv,
  startRuntimeProcess,
  stopRuntimeProcess,
  waitForOutput,
} from '../support/runtime-process.js';

const CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };
const GENERATED = 600;

/** A user's endpoint: moto, with a fidelity proxy in front that pages, exports and (optionally) throttles. */
interface UserEndpoint {
  readonly moto: MotoServer;
  readonly endpoint: FidelityProxy;
  /** Raw API Gateway client to moto (seeding, assertions; not counted). */
  readonly apiGateway: APIGatewayClient;
  stop(): Promise<void>;
}

async function startUserEndpoint(): Promise<UserEndpoint> {
  const moto = await startMoto();
  const endpoint = await startFidelityProxy({ target: moto.endpoint });
  const apiGateway = new APIGatewayClient({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    credentials: CREDENTIALS,
    maxAttempts: 3,
  });
  return {
    moto,
    endpoint,
    apiGateway,
    async stop() {
      apiGateway.destroy();
      await endpoint.stop();
      await moto.stop();
    },
  };
}

async function startAgainst(
  user: Pick<UserEndpoint, 'endpoint'>,
  env: NodeJS.ProcessEnv,
  args: string[] = [],
): Promise<{ runtime: RuntimeProcess; relayPort: number; lambdaPort: number }> {
  const relayPort = await freePort();
  const lambdaPort = await freePort();
  const awsPort = await freePort();
  const runtime = startRuntimeProcess(
    [
      '--aws-port',
      String(awsPort),
      '--relay-port',
      String(relayPort),
      '--lambda-port',
      String(lambdaPort),
      '--schedule-seconds',
      '0',
      ...args,
    ],
    runtimeEnv({ AWS_ENDPOINT_URL: user.endpoint.endpoint, ...env }),
  );
  await waitForOutput(runtime, /^ready in /m, 200_000);
  return { runtime, relayPort, lambdaPort };
}

describe('npm start with AWS_ENDPOINT_URL: an endpoint that pages like API Gateway', () => {
  let user: UserEndpoint;
  let runtime: RuntimeProcess;
  let lambdaPort: number;
  /** What reached the user's endpoint from the start to `ready` (API Gateway, by operation). */
  let startCalls: Record<string, number>;
  const federatedDemo = demoSeed()
    .usagePlans!.flatMap((plan) => plan.stages.map((s) => `${s.api}/${s.stage}`))
    .filter((key, i, all) => all.indexOf(key) === i).length;
  const federated = GENERATED + federatedDemo;

  beforeAll(async () => {
    user = await startUserEndpoint();
    // 600 APIs on a usage plan each, then the demo APIs: the demo and the newest APIs are on the upstream's
    // second page of GetRestApis, and the usage plans need two pages too.
    await seed(
      user.apiGateway,
      generateSeed({ apis: GENERATED, stages: ['prod'], resources: [{ path: '/items', methods: ['GET'] }] }),
      { concurrency: 8 },
    );
    await seed(user.apiGateway, demoSeed(), { concurrency: 4 });
    user.endpoint.resetCalls();
    const started = await startAgainst(user, {
      FED_CONFIG: JSON.stringify({ rateLimit: { ratePerSecond: 100, burst: 200 } }),
    });
    runtime = started.runtime;
    lambdaPort = started.lambdaPort;
    startCalls = user.endpoint.calls.byOperation({ service: 'apigateway' });
  }, 240_000);

  afterAll(async () => {
    await stopRuntimeProcess(runtime);
    await user?.stop();
  });

  it('says the endpoint is the user’s, finds the demo APIs past the first page, and discovers every API', () => {
    const out = runtime.stdout();
    expect(out).toContain(`using the AWS endpoint at ${user.endpoint.endpoint} (AWS_ENDPOINT_URL)`);
    expect(out).toContain('demo APIs already present in the emulator: not seeding again');
    expect(out).toMatch(
      new RegExp(
        // the printed endpoint is the runtime's (its API Gateway writes become change events), in front of the user's
        `^AWS endpoint:\\s+http://127\\.0\\.0\\.1:\\d+\\s+\\(API Gateway writes through it become change events; your endpoint ${user.endpoint.endpoint} \\(AWS_ENDPOINT_URL\\)`,
        'm',
      ),
    );
    expect(out).toContain(`Discovered ${federated} federated APIs`);
    expect(out).toMatch(
      new RegExp(`first discovery: ${federated} federated APIs, \\d+ API Gateway calls, complete`),
    );
    expect(out).toMatch(/^\s+api-599\s+prod\s/m); // the last one created
    expect(runtime.stderr()).not.toMatch(/failed|NotFoundException/);
  });

  it('made exactly the theoretical minimum of API Gateway calls, and nothing the agent did not make', () => {
    const apis = GENERATED + demoSeed().apis.length; // 605: two pages of 500
    const plans = GENERATED + demoSeed().usagePlans!.length; // 603: two pages
    const candidates = GENERATED + 4; // on a usage plan (Internal Audit is on none)
    expect(startCalls).toEqual({
      // the runtime's check for the demo APIs (2 pages), then discovery's listing (2 pages)
      GetRestApis: 2 * Math.ceil(apis / 500),
      GetUsagePlans: Math.ceil(plans / 500),
      GetStages: candidates,
      GetExport: federated,
    });
    // every call answered as the user's endpoint answered it: no 4xx/5xx at all
    expect(user.endpoint.calls.list({ service: 'apigateway' }).filter((c) => c.status !== 200)).toEqual([]);
    // the ledger and the secrets are in the user's endpoint too
    expect(user.endpoint.calls.countOf('CreateTable', { service: 'dynamodb' })).toBe(1);
    expect(user.endpoint.calls.count({ service: 'secretsmanager' })).toBeGreaterThan(0);
  });

  it('runs discovery through the Lambda Invoke endpoint with the minimum calls for an unchanged account', async () => {
    user.endpoint.resetCalls();
    const lambda = new LambdaClient({
      endpoint: `http://127.0.0.1:${lambdaPort}`,
      region: 'us-east-1',
      credentials: CREDENTIALS,
    });
    try {
      const out = await lambda.send(
        new InvokeCommand({ FunctionName: 'discovery', Payload: Buffer.from('{}') }),
      );
      const summary = JSON.parse(Buffer.from(out.Payload!).toString('utf8'));
      expect(out.FunctionError, JSON.stringify(summary)).toBeUndefined();
      expect(summary).toMatchObject({ partial: false, counts: { discovered: federated, removed: 0 } });
    } finally {
      lambda.destroy();
    }
    expect(user.endpoint.calls.byOperation({ service: 'apigateway' })).toEqual({
      GetRestApis: 2,
      GetUsagePlans: 2,
      GetStages: GENERATED + 4,
    });
    expect(user.endpoint.calls.count({ service: 'lambda' })).toBe(0);
  }, 150_000);

  it('stops on SIGTERM and leaves the user’s endpoint running', async () => {
    const exited = await stopRuntimeProcess(runtime);
    expect(exited).toEqual({ code: 0, signal: null });
    const response = await fetch(`${user.moto.endpoint}/moto-api/`);
    expect(response.ok).toBe(true);
  });
});

function petstoreGold(client: ControlPlaneClient): { api: CatalogApi; plan: CatalogApi['plans'][number] } {
  const api = [...client.catalog.values()].find((a) => a.name === 'Petstore' && a.version === 'prod');
  const plan = api?.plans.find((p) => p.name === 'Gold');
  if (!api || !plan) throw new Error('Petstore prod / Gold is not in the catalog');
  return { api, plan };
}

describe('npm start with AWS_ENDPOINT_URL: an endpoint that throttles at 10 requests/s with 429 and Retry-After', () => {
  let user: UserEndpoint;
  let current: { runtime: RuntimeProcess; relayPort: number; lambdaPort: number } | undefined;
  let client: ControlPlaneClient | undefined;

  beforeAll(async () => {
    user = await startUserEndpoint();
    await seed(user.apiGateway, demoSeed(), { concurrency: 4 });
    // a small burst, and an agent configured above the endpoint's rate: it will be throttled
    user.endpoint.setThrottle({ ratePerSecond: 10, burst: 4, retryAfterSeconds: 1 });
  }, 120_000);

  afterAll(async () => {
    await client?.close();
    await stopRuntimeProcess(current?.runtime);
    await user?.stop();
  });

  /** Starts a runtime with a ledger of its own (its first run exports everything) and checks that run. */
  const fullRun = async (
    endpoint: FidelityProxy,
    ledger: string,
    env: NodeJS.ProcessEnv,
    rateLimit = { ratePerSecond: 50, burst: 50 },
  ) => {
    endpoint.resetCalls();
    endpoint.resetStats();
    current = await startAgainst(
      { endpoint },
      {
        FED_TABLE_NAME: ledger,
        FED_CONFIG: JSON.stringify({ rateLimit }),
        ...env,
      },
    );
    const { runtime } = current;
    const sent429 = endpoint.stats.throttle.sent429;
    expect(sent429).toBeGreaterThan(0);
    const out = runtime.stdout();
    expect(out).toContain('Discovered 7 federated APIs');
    const first = out.match(
      /first discovery: 7 federated APIs, \d+ API Gateway calls, (\d+) throttled and retried, complete/,
    );
    expect(first, out).not.toBeNull();
    expect(runtime.stderr()).not.toMatch(/failed|NotFoundException/);
    // every 429 the endpoint sent reached the agent as a 429: throttled calls never reached moto
    expect(endpoint.calls.count({ service: 'apigateway', outcome: 'throttled' })).toBe(sent429);
    expect(
      endpoint.calls
        .list({ service: 'apigateway' })
        .filter((c) => c.status !== 200 && c.status !== 429)
        .map((c) => `${c.operation} ${c.status}`),
    ).toEqual([]);
    return { sent429, agentThrottles: Number(first![1]) };
  };

  it('a full run as the agent makes them is complete: every 429 seen and retried by the agent itself', async () => {
    const { sent429, agentThrottles } = await fullRun(user.endpoint, 'ledger-direct', {});
    expect(agentThrottles).toBe(sent429);
  }, 240_000);

  it('subscriptions, the relay (@connections) and discover (an Event invocation) work against it', async () => {
    const { runtime, lambdaPort } = current!;
    const relayUrl = (await waitForOutput(runtime, /^Relay \(WebSocket API\):\s+(\S+)/m, 1))[1]!;
    const token = (await waitForOutput(runtime, /^Relay token:\s+(\S+)/m, 1))[1]!;
    client = new ControlPlaneClient({ url: relayUrl, token, reconnect: false });
    await client.connect();
    expect(client.catalog.size).toBe(7);
    const { api, plan } = petstoreGold(client);
    const reply = await client.request({
      action: 'subscribe',
      subscriptionId: 'user-relay-1',
      apiId: api.id,
      planId: plan.id,
      application: { id: 'app-user', name: 'User endpoint app' },
    });
    expect(reply.status, JSON.stringify(reply.error)).toBe('SUCCEEDED');
    const payload = reply.payload as { status: string; apiKeyId: string; apiKey: string };
    expect(payload.status).toBe('ACTIVE');
    const key = await user.apiGateway.send(
      new GetApiKeyCommand({ apiKey: payload.apiKeyId, includeValue: true }),
    );
    expect(key.value).toBe(payload.apiKey);
    const keys = await user.apiGateway.send(new GetUsagePlanKeysCommand({ usagePlanId: plan.usagePlanId }));
    expect(keys.items?.map((k) => k.id)).toContain(payload.apiKeyId);
    const revoked = await client.request({ action: 'unsubscribe', subscriptionId: 'user-relay-1' });
    expect(revoked.payload).toMatchObject({ status: 'REVOKED' });
    await expect(
      user.apiGateway.send(new GetApiKeyCommand({ apiKey: payload.apiKeyId })),
    ).rejects.toMatchObject({
      name: 'NotFoundException',
    });

    const lambda = new LambdaClient({
      endpoint: `http://127.0.0.1:${lambdaPort}`,
      region: 'us-east-1',
      credentials: CREDENTIALS,
    });
    try {
      const out = await lambda.send(
        new InvokeCommand({
          FunctionName: 'subscriptions',
          Payload: Buffer.from(
            JSON.stringify({
              action: 'subscribe',
              subscriptionId: 'user-invoke-1',
              apiId: api.id,
              planId: plan.id,
              application: { id: 'app-ops', name: 'Operator application' },
            }),
          ),
        }),
      );
      const result = JSON.parse(Buffer.from(out.Payload!).toString('utf8'));
      expect(out.FunctionError, JSON.stringify(result)).toBeUndefined();
      expect(result).toMatchObject({ status: 'ACTIVE', usagePlanId: plan.usagePlanId });
    } finally {
      lambda.destroy();
    }

    const discovered = await client.request({ action: 'discover' }, { timeoutMs: 60_000 });
    expect(discovered.status, JSON.stringify(discovered.error)).toBe('SUCCEEDED');
    expect(discovered.payload).toMatchObject({ partial: false, counts: { discovered: 7, removed: 0 } });
    // the Lambda invocations and the @connections posts stayed in the runtime
    expect(user.endpoint.calls.count({ service: 'lambda' })).toBe(0);
    expect(user.endpoint.calls.count({ service: 'execute-api' })).toBe(0);

    // change events with the user's endpoint: a create-deployment through the printed AWS endpoint
    const printed =
      /create-deployment --endpoint-url (\S+) --region us-east-1 \\\n\s+--rest-api-id (\S+) --stage-name (\S+)/.exec(
        runtime.stdout(),
      );
    expect(printed, runtime.stdout()).not.toBeNull();
    const [, awsEndpoint, restApiId, stageName] = printed!;
    const upserted = new Promise<string | undefined>((resolve) => {
      client!.on(
        'event',
        (e: { event: string; payload: { source?: { restApiId?: string; deploymentId?: string } } }) => {
          if (e.event === 'api.upserted' && e.payload.source?.restApiId === restApiId)
            resolve(e.payload.source?.deploymentId);
        },
      );
    });
    const gateway = new APIGatewayClient({
      endpoint: awsEndpoint,
      region: 'us-east-1',
      credentials: CREDENTIALS,
    });
    const deployment = await gateway.send(new CreateDeploymentCommand({ restApiId, stageName }));
    gateway.destroy();
    expect(await upserted).toBe(deployment.id);
    await client.close();
    expect(await stopRuntimeProcess(runtime)).toEqual({ code: 0, signal: null });
  }, 120_000);

  it("with moto's fixes in front (FED_MOTO_FIXES=1) of an endpoint that answers oas30 itself: no lookups", async () => {
    const { sent429, agentThrottles } = await fullRun(user.endpoint, 'ledger-fixes', { FED_MOTO_FIXES: '1' });
    expect(agentThrottles).toBe(sent429);
    const operations = Object.keys(user.endpoint.calls.byOperation({ service: 'apigateway' }));
    expect(operations.sort()).toEqual(['GetExport', 'GetRestApis', 'GetStages', 'GetUsagePlans']);
    expect(current!.runtime.stdout()).toContain('fidelity proxy (--moto-fixes) in front of your endpoint');
    expect(await stopRuntimeProcess(current!.runtime)).toEqual({ code: 0, signal: null });
  }, 240_000);

  it("with moto's fixes in front of a bare moto that throttles: the 429s of their lookups pass through", async () => {
    // the same moto behind a proxy that fixes nothing: a user's own moto, throttled
    const bare = await startFidelityProxy({ target: user.moto.endpoint, fixes: false });
    try {
      bare.setThrottle({ ratePerSecond: 10, burst: 4, retryAfterSeconds: 1 });
      // each GetExport costs the endpoint four calls here (stage, deployment, models, export): the agent at its
      // default 10/s gets throttled at once and slows down until it fits
      const { sent429, agentThrottles } = await fullRun(
        bare,
        'ledger-bare',
        { FED_MOTO_FIXES: '1' },
        { ratePerSecond: 10, burst: 40 },
      );
      // the fixes looked the stages up (moto answers Swagger 2.0) through the throttled endpoint
      expect(bare.calls.countOf('GetStage')).toBeGreaterThan(0);
      expect(agentThrottles).toBeGreaterThan(0);
      expect(agentThrottles).toBeLessThanOrEqual(sent429);
      expect(await stopRuntimeProcess(current!.runtime)).toEqual({ code: 0, signal: null });
    } finally {
      await bare.stop();
    }
  }, 240_000);
});
