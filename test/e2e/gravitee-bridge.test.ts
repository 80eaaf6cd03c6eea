/**
 * End to end: Gravitee APIM's integration controller (the test harness's stand-in, written from
 * Gravitee's sources) ⇄ the bridge (`apigw-fed gravitee`) ⇄ `npm start`'s runtime as a child process
 * (`tsx local/start.ts`) on a moto seeded with 600 federated APIs (300 REST APIs × 2 stages).
 *
 * The relay link goes through a TCP forwarder the test can cut, to take the relay away and give it back.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { resolve } from 'node:path';
import { APIGatewayClient, GetApiKeyCommand, GetUsagePlanKeysCommand } from '@aws-sdk/client-api-gateway';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MotoServer, startMoto } from '../../emulator/moto.js';
import { generateSeed, seed } from '../../emulator/seeder.js';
import type { Bridge } from '../../gravitee/src/bridge.js';
import { FRAGMENT_BYTES, MAX_FRAME_BYTES } from '../../gravitee/src/exchange.js';
import { memoryLog } from '../../gravitee/src/log.js';
import { main } from '../../gravitee/src/main.js';
import { freePort } from '../../local/ports.js';
import type { AgentSession, GraviteeController } from '../support/gravitee/contract.js';
import { startGraviteeController } from '../support/gravitee/controller.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };
const INTEGRATION_ID = 'int-e2e-aws';
const GRAVITEE_TOKEN = 'gravitee-e2e-token';
/** 300 REST APIs × 2 stages, each stage on one usage plan: 600 federated APIs. */
const REST_APIS = 300;
const FAST = {
  backoff: { initialMs: 200, factor: 1.5, maxMs: 1_000 },
  relayReconnect: { initialDelayMs: 200, maxDelayMs: 1_000 },
} as const;

interface Started {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
}

function spawnLogged(command: string, args: string[], env: NodeJS.ProcessEnv): Started {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    err += c;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('exit', (code, signal) => done({ code, signal })),
  );
  return { child, exited, stdout: () => out, stderr: () => err };
}

async function waitForOutput(
  started: Started,
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = started.stdout().match(pattern);
    if (match) return match;
    if (started.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no ${pattern} in time\nstdout:\n${started.stdout()}\nstderr:\n${started.stderr()}`);
}

async function until(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`${what}: not in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stopGroup(started: Started | undefined): Promise<void> {
  const pid = started?.child.pid;
  if (!started || pid === undefined || started.child.exitCode !== null || started.child.signalCode !== null)
    return;
  started.child.kill('SIGTERM');
  const timeout = new Promise<'timeout'>((done) => setTimeout(() => done('timeout'), 10_000).unref());
  if ((await Promise.race([started.exited, timeout])) === 'timeout') {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** A TCP forwarder to the relay that can be cut (connections dropped, port closed) and restored. */
class Cable {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  constructor(
    readonly port: number,
    private readonly target: number,
  ) {}
  async up(): Promise<void> {
    const server = createServer((inbound) => {
      const outbound = tcpConnect(this.target, '127.0.0.1');
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      inbound.pipe(outbound).pipe(inbound);
    });
    await new Promise<void>((done) => server.listen(this.port, '127.0.0.1', () => done()));
    this.server = server;
  }
  async down(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((done) => server.close(() => done()));
  }
}

let moto: MotoServer;
let runtime: Started;
let controller: GraviteeController;
let cable: Cable;
let relayUrl: string;
let relayToken: string;
let apiGateway: APIGatewayClient;
let bridge: Bridge;
let stopBridge: () => void;
let bridgeExit: Promise<number>;
const bridgeLog = memoryLog();
let session: AgentSession;

/**
 * The newest session that answers a HEALTH_CHECK healthy. Gravitee unregisters a channel whose check
 * is unhealthy (GOOD_BYE reconnect), so while the relay is away sessions come and go.
 */
async function healthySession(timeoutMs = 180_000): Promise<AgentSession> {
  const deadline = Date.now() + timeoutMs;
  let current = session;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error('no healthy session in time');
    const reply = await current.nextHealthReply(Math.min(left, 8_000)).catch(() => undefined);
    if (reply?.payload?.healthy === true) return current;
    current = await controller.nextSession(Math.max(1, deadline - Date.now()));
  }
}

function bridgeEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    gravitee_integration_connector_ws_endpoints_0: controller.endpoint,
    gravitee_integration_connector_ws_headers_0_name: 'Authorization',
    gravitee_integration_connector_ws_headers_0_value: `bearer ${GRAVITEE_TOKEN}`,
    gravitee_integration_providers_0_type: 'aws-api-gateway',
    gravitee_integration_providers_0_integrationId: INTEGRATION_ID,
    FED_RELAY_URL: `ws://127.0.0.1:${cable.port}/local`,
    FED_RELAY_TOKEN: relayToken,
    ...overrides,
  };
}

beforeAll(async () => {
  moto = await startMoto();
  apiGateway = new APIGatewayClient({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    credentials: CREDENTIALS,
  });
  await seed(apiGateway, generateSeed({ apis: REST_APIS, stages: ['dev', 'prod'], plansPerStage: 1 }));
  const relayPort = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_ENDPOINT_URL: moto.endpoint };
  delete env.FED_RELAY_TOKEN;
  // Discovery of 600 stages at the test's pace: the emulator does not throttle, so the limiter need not.
  env.FED_CONFIG = JSON.stringify({ rateLimit: { ratePerSecond: 100, burst: 200 }, concurrency: 16 });
  runtime = spawnLogged(
    resolve(ROOT, 'node_modules/.bin/tsx'),
    [
      'local/start.ts',
      '--no-seed',
      // a bare moto behind AWS_ENDPOINT_URL: API Gateway paging and OpenAPI 3 exports from the proxy
      '--moto-fixes',
      '--schedule-seconds',
      '0',
      '--relay-port',
      String(relayPort),
      '--lambda-port',
      String(await freePort()),
      '--aws-port',
      String(await freePort()),
    ],
    env,
  );
  await waitForOutput(runtime, /^ready in /m, 240_000);
  expect(runtime.stdout()).toContain(`Discovered ${2 * REST_APIS} federated APIs`);
  relayUrl = (await waitForOutput(runtime, /^Relay \(WebSocket API\):\s+(\S+)/m, 1))[1]!;
  relayToken = (await waitForOutput(runtime, /^Relay token:\s+(\S+)/m, 1))[1]!;
  expect(relayUrl).toBe(`ws://127.0.0.1:${relayPort}/local`);

  cable = new Cable(await freePort(), relayPort);
  await cable.up();
  controller = await startGraviteeController({
    tokens: [GRAVITEE_TOKEN],
    integrations: { [INTEGRATION_ID]: { provider: 'aws-api-gateway' } },
    healthCheckIntervalMs: 300,
  });
  let resolveStop!: () => void;
  const stopped = new Promise<void>((r) => {
    resolveStop = r;
  });
  stopBridge = resolveStop;
  let resolveBridge!: (b: Bridge) => void;
  const started = new Promise<Bridge>((r) => {
    resolveBridge = r;
  });
  bridgeExit = main([], {
    stdout: () => undefined,
    stderr: (line) => bridgeLog.lines.push(line),
    env: bridgeEnv(),
    untilStopped: () => stopped,
    log: bridgeLog,
    tuning: { ...FAST, ingestBatchBytes: 8 * 1024 },
    onStarted: resolveBridge,
  });
  bridge = await started;
  session = await controller.nextSession(30_000);
  await bridge.synced;
  session = await healthySession();
}, 480_000);

afterAll(async () => {
  if (process.env.BRIDGE_E2E_DEBUG) {
    const { writeFileSync } = await import('node:fs');
    writeFileSync('/tmp/bridge-e2e-runtime.log', `${runtime?.stdout()}\n--- stderr\n${runtime?.stderr()}`);
    writeFileSync('/tmp/bridge-e2e-bridge.log', bridgeLog.lines.join('\n'));
  }
  stopBridge?.();
  await bridgeExit;
  await controller?.stop();
  await cable?.down();
  await stopGroup(runtime);
  apiGateway?.destroy();
  await moto?.stop();
}, 60_000);

describe('Gravitee bridge end to end (npm start, the controller stand-in)', () => {
  it('npm start prints the command that runs the bridge against a Gravitee', () => {
    const out = runtime.stdout();
    expect(out).toContain(`FED_RELAY_URL=${relayUrl}`);
    expect(out).toContain(`FED_RELAY_TOKEN=${relayToken}`);
    expect(out).toContain('gravitee_integration_providers_0_integrationId=');
    expect(out).toContain('npx apigw-fed gravitee');
  });

  it('says HELLO first with the integration id and the provider, over the v1 protocol with the token', () => {
    expect(session.targetId).toBe(INTEGRATION_ID);
    expect(session.hello).toEqual({ targetId: INTEGRATION_ID, provider: 'aws-api-gateway' });
    expect(session.headers['x-gravitee-exchange-protocol']).toBe('v1');
    expect(session.headers.authorization).toBe(`bearer ${GRAVITEE_TOKEN}`);
  });

  it('answers PRIMARY', async () => {
    const reply = await session.send('PRIMARY', { primary: true });
    expect(reply).toMatchObject({ type: 'PRIMARY', commandStatus: 'SUCCEEDED' });
    expect(bridge.connector.isPrimary).toBe(true);
  });

  it('answers HEALTH_CHECK healthy while the relay link is up; APIM shows the agent CONNECTED', async () => {
    const reply = await session.nextHealthReply(5_000);
    expect(reply).toMatchObject({
      type: 'HEALTH_CHECK',
      commandStatus: 'SUCCEEDED',
      payload: { healthy: true },
    });
    expect(reply.payload?.detail).toBe(`relay link up, ${2 * REST_APIS} APIs in the catalog`);
    expect(controller.status(INTEGRATION_ID)).toBe('CONNECTED');
  });

  it('answers DISCOVER with the 600 APIs, as one message in frames under 64 KiB', async () => {
    const started = performance.now();
    const reply = await session.send('DISCOVER', {});
    const ms = performance.now() - started;
    expect(reply.commandStatus, reply.errorDetails).toBe('SUCCEEDED');
    const payload = reply.payload as { apis: Record<string, unknown>[]; isPartialDiscovery: boolean };
    expect(payload.apis).toHaveLength(2 * REST_APIS);
    expect(payload.isPartialDiscovery).toBe(false);
    const api = payload.apis[0]!;
    expect(api).toMatchObject({ type: 'PROXY', version: 'dev', plans: [{ planSecurityType: 'API_KEY' }] });
    expect(api.uniqueId).toBe(api.id);
    expect(session.maxMessageBytes).toBeGreaterThan(MAX_FRAME_BYTES);
    expect(session.maxFrameBytes).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    expect(controller.violations).toEqual([]);
    const bytes = session.maxMessageBytes;
    console.info(
      `[gravitee e2e] DISCOVER of ${payload.apis.length} APIs: ${Math.round(ms)} ms, ${bytes} bytes, ${Math.ceil(bytes / FRAGMENT_BYTES)} frames of at most ${session.maxFrameBytes} bytes`,
    );
  });

  let discovered: { id: string; name: string; version: string; plans: { id: string }[] }[] = [];

  it('answers START_INGEST with the count, then pushes INGEST batches with the OpenAPI pages, done on the last', async () => {
    const reply = await session.send('DISCOVER', {});
    discovered = (reply.payload as { apis: typeof discovered }).apis;
    const apiIds = discovered.slice(0, 5).map((a) => a.id);
    const started = await session.send('START_INGEST', { ingestJobId: 'job-1', apiIds });
    expect(started).toMatchObject({
      type: 'START_INGEST',
      commandStatus: 'SUCCEEDED',
      payload: { ingestJobId: 'job-1', total: 5 },
    });
    const ingested: Record<string, unknown>[] = [];
    let batches = 0;
    for (;;) {
      const ingest = await session.nextAgentCommand('INGEST', 20_000);
      batches++;
      expect(ingest.payload.ingestJobId).toBe('job-1');
      ingested.push(...(ingest.payload.apis as Record<string, unknown>[]));
      if (ingest.payload.done === true) break;
    }
    expect(batches).toBeGreaterThan(1); // an 8 KiB batch budget: a few APIs a batch
    expect(ingested.map((a) => a.id)).toEqual(
      apiIds.slice().sort((x, y) => {
        const a = discovered.find((d) => d.id === x)!;
        const b = discovered.find((d) => d.id === y)!;
        return a.name.localeCompare(b.name) || a.version.localeCompare(b.version);
      }),
    );
    for (const api of ingested) {
      const pages = api.pages as { pageType: string; content: string; filename: string }[];
      expect(pages).toHaveLength(1);
      expect(pages[0]!.pageType).toBe('SWAGGER');
      const document = JSON.parse(pages[0]!.content) as { openapi: string; info: { title: string } };
      expect(document.openapi).toMatch(/^3\./);
      expect(document.info.title).toBe(api.name);
    }
  });

  const subscription = (planId: string) => ({
    graviteeSubscriptionId: 'gsub-e2e-1',
    graviteeApplicationId: 'gapp-1',
    graviteeApplicationName: 'Gravitee e2e app',
    type: 'API_KEY',
    metadata: { planId },
  });
  let key: { apiKey: string; metadata: Record<string, string> };

  it('SUBSCRIBE returns the value of the key that is now on the plan’s usage plan', async () => {
    const api = discovered[0]!;
    const planId = api.plans[0]!.id;
    const reply = await session.send('SUBSCRIBE', { apiId: api.id, subscription: subscription(planId) });
    expect(reply.commandStatus, reply.errorDetails).toBe('SUCCEEDED');
    key = (reply.payload as { subscription: typeof key }).subscription;
    expect(key).toMatchObject({ graviteeSubscriptionId: 'gsub-e2e-1' });
    const onPlan = await apiGateway.send(
      new GetUsagePlanKeysCommand({ usagePlanId: key.metadata.usagePlanId }),
    );
    expect(onPlan.items?.map((k) => k.id)).toEqual([key.metadata.apiKeyId]);
    const value = await apiGateway.send(
      new GetApiKeyCommand({ apiKey: key.metadata.apiKeyId, includeValue: true }),
    );
    expect(value.value).toBe(key.apiKey);
  });

  it('a repeated SUBSCRIBE returns the same key', async () => {
    const api = discovered[0]!;
    const reply = await session.send('SUBSCRIBE', {
      apiId: api.id,
      subscription: subscription(api.plans[0]!.id),
    });
    expect((reply.payload as { subscription: typeof key }).subscription).toEqual(key);
  });

  it('UNSUBSCRIBE with the metadata SUBSCRIBE returned deletes the key', async () => {
    const api = discovered[0]!;
    const reply = await session.send('UNSUBSCRIBE', {
      apiId: api.id,
      subscription: {
        ...subscription(api.plans[0]!.id),
        metadata: { ...key.metadata, planId: api.plans[0]!.id },
      },
    });
    expect(reply).toMatchObject({ type: 'UNSUBSCRIBE', commandStatus: 'SUCCEEDED' });
    await expect(
      apiGateway.send(new GetApiKeyCommand({ apiKey: key.metadata.apiKeyId })),
    ).rejects.toMatchObject({
      name: 'NotFoundException',
    });
    expect(bridgeLog.lines.join('\n')).not.toContain(key.apiKey);
  });

  it('answers an unknown command type without losing the channel', async () => {
    const reply = await session.send('PROMOTE_API', {});
    expect(reply.commandStatus).toBe('ERROR');
    expect((await session.send('PRIMARY', { primary: true })).commandStatus).toBe('SUCCEEDED');
  });

  it('reconnects and says HELLO again after GOOD_BYE {reconnect: true}', async () => {
    const old = session;
    const next = controller.nextSession(20_000);
    await old.goodBye(true);
    await old.closed;
    session = await next;
    expect(session.hello).toEqual({ targetId: INTEGRATION_ID, provider: 'aws-api-gateway' });
    expect((await session.send('PRIMARY', { primary: false })).commandStatus).toBe('SUCCEEDED');
  });

  it('reconnects after the controller drops the socket', async () => {
    const next = controller.nextSession(20_000);
    session.drop();
    session = await next;
    expect(session.targetId).toBe(INTEGRATION_ID);
    expect(bridgeLog.lines.join('\n')).toMatch(/Gravitee connection closed .*reconnecting/);
  });

  it('reports unhealthy while the relay is away (Gravitee drops the channel), and healthy again once it is back', async () => {
    await cable.down();
    let unhealthy: Awaited<ReturnType<AgentSession['nextHealthReply']>> | undefined;
    await until(async () => {
      unhealthy = await session.nextHealthReply(5_000);
      return unhealthy.payload?.healthy === false;
    }, 'an unhealthy check');
    expect(unhealthy?.payload?.detail).toMatch(/^relay link down since .*: reconnecting$/);
    await session.closed; // unregistered by Gravitee: GOOD_BYE {reconnect: true}, then closed
    await cable.up();
    session = await healthySession();
    expect(controller.status(INTEGRATION_ID)).toBe('CONNECTED');
    const reply = await session.send('DISCOVER', {});
    expect((reply.payload as { apis: unknown[] }).apis).toHaveLength(2 * REST_APIS);
    expect(bridgeLog.lines.join('\n')).toMatch(/relay link down \(\d+\): reconnecting/);
  });

  it('reports a refused upgrade as a token problem and keeps retrying with backoff', async () => {
    const log = memoryLog();
    let stop!: () => void;
    const stopped = new Promise<void>((r) => {
      stop = r;
    });
    const before = controller.upgradeAttempts;
    const exit = main([], {
      stdout: () => undefined,
      stderr: (line) => log.lines.push(line),
      env: bridgeEnv({ gravitee_integration_connector_ws_headers_0_value: 'bearer wrong-token' }),
      untilStopped: () => stopped,
      log,
      tuning: FAST,
    });
    await until(() => controller.upgradeAttempts >= before + 3, 'three upgrade attempts');
    stop();
    expect(await exit).toBe(0);
    const text = log.lines.join('\n');
    expect(text).toMatch(/refused the connection \((401|403)\): check the token/);
    expect(text).toMatch(/retrying in/);
    expect(text).not.toContain('wrong-token');
    expect(controller.violations.some((v) => v.kind === 'unauthorized')).toBe(true);
  });

  it('stops with a non-zero exit, the reason and the integration id when HELLO is refused (npx apigw-fed gravitee)', async () => {
    const started = spawnLogged(process.execPath, ['bin/apigw-fed.mjs', 'gravitee'], {
      PATH: process.env.PATH ?? '',
      ...bridgeEnv({ gravitee_integration_providers_0_integrationId: 'int-unknown' }),
    });
    const { code } = await Promise.race([
      started.exited,
      new Promise<never>((_, fail) =>
        setTimeout(() => fail(new Error(`no exit:\n${started.stderr()}`)), 30_000).unref(),
      ),
    ]).finally(() => stopGroup(started));
    expect(code).toBe(1);
    expect(started.stderr()).toMatch(/refused integration int-unknown: \S+/);
    expect(controller.helloErrors.map((e) => e.targetId)).toContain('int-unknown');
  }, 40_000);

  it('never logged a token', () => {
    const text = bridgeLog.lines.join('\n');
    expect(text).not.toContain(GRAVITEE_TOKEN);
    expect(text).not.toContain(relayToken);
  });
});
