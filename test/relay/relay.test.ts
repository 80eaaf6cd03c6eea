import { createHash, randomBytes } from 'node:crypto';
import { GetApiKeyCommand, GetUsagePlanKeysCommand } from '@aws-sdk/client-api-gateway';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlaneClient } from '../../client/control-plane-client.js';
import { seed } from '../../emulator/seeder.js';
import { createRelayAuthorizerHandler } from '../../functions/relay-authorizer/handler.js';
import {
  ConnectionRepository,
  type EventMessage,
  EventType,
  type FederatedApi,
  MAX_MESSAGE_BYTES,
  Outbox,
  Reassembler,
  RelayService,
  TokenVerifier,
} from '../../layers/federation-core/src/index.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { type RelayHarness, startRelayHarness, TEST_AGENT } from '../support/relay-harness.js';

let emu: Emulator;
let world: RelayHarness;
const clients: ControlPlaneClient[] = [];

beforeAll(async () => {
  emu = await startEmulator();
  world = await startRelayHarness(emu, TEST_AGENT);
});

afterAll(async () => {
  for (const c of clients) await c.close();
  await world?.stop();
  await emu?.stop();
});

function client(options: { lastSeq?: number; syncOnConnect?: boolean } = {}): ControlPlaneClient {
  const c = new ControlPlaneClient({ url: world.ws.url, token: world.token, reconnect: false, ...options });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

function collectEvents(c: ControlPlaneClient): EventMessage[] {
  const events: EventMessage[] = [];
  c.on('event', (e: EventMessage) => events.push(e));
  return events;
}

async function connectionRecords(): Promise<string[]> {
  return (await new ConnectionRepository(world.ledger).list()).map((c) => c.connectionId).sort();
}

describe('relay $connect', () => {
  it('refuses a connection without a token (401) and with a wrong token (403), writing no record', async () => {
    const before = await connectionRecords();
    await expect(world.connect(null)).rejects.toMatchObject({ status: 401 });
    await expect(world.connect('not-the-token')).rejects.toMatchObject({ status: 403 });
    const wrong = new ControlPlaneClient({ url: world.ws.url, token: 'wrong', reconnect: false });
    await expect(wrong.connect()).rejects.toThrow(/refused the connection \(403\): check the token/);
    await world.idle();
    expect(await connectionRecords()).toEqual(before);
    expect(world.ws.connections()).toHaveLength(0);
  });

  it('denies a missing or non-Bearer header with a Deny policy, not a function error (no alarm)', async () => {
    const authorizer = createRelayAuthorizerHandler({
      verifier: new TokenVerifier({ loadToken: async () => 'secret-token-value' }),
    });
    const methodArn = 'arn:aws:execute-api:us-east-1:123456789012:abc/live/$connect';
    for (const headers of [{}, { authorization: 'Basic c2VjcmV0' }, { authorization: 'Bearer' }]) {
      const denied = await authorizer({ methodArn, headers } as never);
      expect(denied.policyDocument.Statement[0]).toMatchObject({ Effect: 'Deny', Resource: methodArn });
    }
    const allow = await authorizer({
      methodArn,
      headers: { authorization: 'Bearer secret-token-value' },
    } as never);
    expect(allow.policyDocument.Statement[0]).toMatchObject({ Effect: 'Allow', Resource: methodArn });
  });

  it('greets a new connection with hello and records it in the ledger', async () => {
    const raw = await world.connect();
    const hello = await raw.waitFor((m) => m.event === 'hello');
    expect(hello).toEqual({
      type: 'event',
      seq: 0,
      event: 'hello',
      payload: {
        agentId: 'test-agent',
        provider: 'aws-api-gateway',
        version: '9.9.9-test',
        sources: [{ name: 'default', regions: ['us-east-1'] }],
      },
    });
    const [live] = world.ws.connections();
    expect(await connectionRecords()).toContain(live?.connectionId);
    await raw.close();
    await waitUntil(async () => !(await connectionRecords()).includes(live?.connectionId as string));
  });
});

describe('relay commands', () => {
  it('discover: the changes arrive as events, then the reply with the run summary', async () => {
    const c = client();
    const events = collectEvents(c);
    await c.connect();
    const reply = await c.request({ action: 'discover' });
    expect(reply).toMatchObject({ type: 'reply', status: 'SUCCEEDED' });
    expect(reply.payload).toMatchObject({ partial: false, counts: expect.any(Object) });
    const names = events
      .filter((e) => e.event === 'api.upserted')
      .map((e) => (e.payload as FederatedApi).name);
    expect(names.sort()).toEqual(['Orders', 'Pets']);
    const completed = events.find((e) => e.event === 'discovery.completed');
    expect(completed?.seq).toBeGreaterThan(0);
    // Every outbox event arrived in sequence order, before the reply.
    const seqs = events.filter((e) => e.seq > 0).map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect([...c.catalog.values()].map((a) => a.name).sort()).toEqual(['Orders', 'Pets']);
    for (const api of c.catalog.values()) expect(api.plans).toHaveLength(1);
    expect(c.lastSeq).toBe(completed?.seq);
  });

  it('ping: agent id, version, sources, last run and connection count', async () => {
    const c = client({ syncOnConnect: false });
    await c.connect();
    const reply = await c.request({ action: 'ping' });
    expect(reply.status).toBe('SUCCEEDED');
    expect(reply.payload).toMatchObject({
      agentId: 'test-agent',
      provider: 'aws-api-gateway',
      version: '9.9.9-test',
      sources: [{ name: 'default', regions: ['us-east-1'] }],
      lastRun: { runId: expect.any(String), partial: false },
    });
    expect((reply.payload as { connections: number }).connections).toBe(world.ws.connections().length);
  });

  it('sync without since sends a snapshot of the catalog, then sync.completed at the latest seq', async () => {
    const c = client();
    const events = collectEvents(c);
    await c.connect();
    const latest = await world.relay.outbox.latestSeq();
    const upserted = events.filter((e) => e.event === 'api.upserted');
    expect(upserted.map((e) => e.seq)).toEqual(upserted.map(() => 0));
    expect(upserted.length).toBe((await world.relay.catalog.listAll()).length);
    expect(events.at(-1)).toMatchObject({
      event: 'sync.completed',
      payload: { seq: latest, snapshot: true },
    });
    expect(c.lastSeq).toBe(latest);
  });

  it('subscribe then unsubscribe round trip: a key on the usage plan, then revoked', async () => {
    const c = client();
    await c.connect();
    const pets = [...c.catalog.values()].find((a) => a.name === 'Pets');
    const plan = pets?.plans[0];
    expect(plan).toBeDefined();
    const subscriptionId = `sub-${randomBytes(4).toString('hex')}`;
    const subscribed = await c.request({
      action: 'subscribe',
      subscriptionId,
      apiId: pets?.id as string,
      planId: plan?.id as string,
      application: { id: 'app-1', name: 'Mobile app' },
    });
    expect(subscribed).toMatchObject({
      status: 'SUCCEEDED',
      payload: { subscriptionId, status: 'ACTIVE', usagePlanId: plan?.usagePlanId },
    });
    const { apiKeyId, apiKey } = subscribed.payload as { apiKeyId: string; apiKey: string };
    expect(apiKey.length).toBeGreaterThanOrEqual(20);
    const onPlan = await emu
      .apiGateway()
      .send(new GetUsagePlanKeysCommand({ usagePlanId: plan?.usagePlanId as string }));
    expect(onPlan.items?.map((k) => k.id)).toContain(apiKeyId);

    const again = await c.request({
      action: 'subscribe',
      subscriptionId,
      apiId: pets?.id as string,
      planId: plan?.id as string,
      application: { id: 'app-1', name: 'Mobile app' },
    });
    expect((again.payload as { apiKeyId: string }).apiKeyId).toBe(apiKeyId);

    const revoked = await c.request({ action: 'unsubscribe', subscriptionId });
    expect(revoked).toMatchObject({ status: 'SUCCEEDED', payload: { subscriptionId, status: 'REVOKED' } });
    await expect(emu.apiGateway().send(new GetApiKeyCommand({ apiKey: apiKeyId }))).rejects.toMatchObject({
      name: 'NotFoundException',
    });
    // the plan's key list as API Gateway answers it (through the proxy: moto keeps a deleted key's link)
    const afterRevoke = await emu
      .apiGateway({ via: 'proxy' })
      .send(new GetUsagePlanKeysCommand({ usagePlanId: plan?.usagePlanId as string, limit: 500 }));
    expect(afterRevoke.items?.map((k) => k.id)).not.toContain(apiKeyId);
  });

  it('subscribe to an API not in the catalog gets a FAILED reply with NOT_FOUND', async () => {
    const c = client({ syncOnConnect: false });
    await c.connect();
    const reply = await c.request({
      action: 'subscribe',
      subscriptionId: 'sub-unknown',
      apiId: 'no-such-api',
      planId: 'no-such-plan',
      application: { id: 'a', name: 'A' },
    });
    expect(reply).toMatchObject({ status: 'FAILED', error: { code: 'NOT_FOUND' } });
    expect(reply.error?.message).toMatch(/no-such-api/);
  });

  it('bad JSON, unknown action, missing fields and oversized frames: FAILED replies and no AWS call', async () => {
    const raw = await world.connect();
    await raw.waitFor((m) => m.event === 'hello');
    await world.idle();
    const callsBefore = emu.proxy.calls.count();
    raw.send('{"action": "ping", "id": ');
    const badJson = await raw.waitFor(
      (m) => m.type === 'reply' && (m.error as { code?: string })?.code === 'INVALID_JSON',
    );
    expect(badJson).toMatchObject({ commandId: null, status: 'FAILED' });
    raw.send(JSON.stringify({ action: 'reboot', id: 'u1' }));
    expect(await raw.waitFor((m) => m.commandId === 'u1')).toMatchObject({
      status: 'FAILED',
      error: { code: 'UNKNOWN_ACTION', message: expect.stringMatching(/reboot.*discover, sync/) },
    });
    raw.send(JSON.stringify({ action: 'subscribe', id: 'v1', apiId: 'a' }));
    const missing = await raw.waitFor((m) => m.commandId === 'v1');
    expect(missing).toMatchObject({ status: 'FAILED', error: { code: 'VALIDATION' } });
    expect((missing.error as { message: string }).message).toMatch(/subscriptionId/);
    raw.send(JSON.stringify({ action: 'unsubscribe', id: 'v2' }));
    expect(await raw.waitFor((m) => m.commandId === 'v2')).toMatchObject({ error: { code: 'VALIDATION' } });
    raw.send(JSON.stringify({ action: 'sync', id: 'v3', since: 'yesterday' }));
    expect(await raw.waitFor((m) => m.commandId === 'v3')).toMatchObject({ error: { code: 'VALIDATION' } });
    raw.send(JSON.stringify({ action: 'ping', id: 'big', pad: 'x'.repeat(40_000) }));
    expect(await raw.waitFor((m) => (m.error as { code?: string })?.code === 'TOO_LARGE')).toMatchObject({
      status: 'FAILED',
    });
    await world.idle();
    expect(emu.proxy.calls.count()).toBe(callsBefore);
    await raw.close();
  });
});

describe('relay delivery', () => {
  it('sends a 1 MB OpenAPI document in parts under 128 KB that reassemble byte-identical', async () => {
    const document = bigOpenApi(1024 * 1024);
    const bytes = Buffer.from(JSON.stringify(document), 'utf8');
    expect(bytes.length).toBeGreaterThanOrEqual(1024 * 1024);
    const stored = await world.discovery.definitions.put(bytes);
    const [template] = await world.relay.catalog.listAll();
    const api: FederatedApi = {
      ...(template as FederatedApi),
      id: 'big-api',
      name: 'Big',
      definition: { format: 'openapi-3.0', sha256: stored.sha256, size: bytes.length },
    };
    await world.relay.catalog.putApi(api);

    const raw = await world.connect();
    await raw.waitFor((m) => m.event === 'hello');
    const c = client({ syncOnConnect: false });
    await c.connect();
    const [event] = await world.relay.outbox.append([{ event: EventType.API_UPSERTED, payload: api }]);
    const report = await world.relay.publisher.publish([event as never]);
    expect(report.failed).toBe(0);

    const parts = raw.frames.map((f) => JSON.parse(f)).filter((m) => m.type === 'part');
    expect(parts.length).toBeGreaterThanOrEqual(6);
    for (const f of raw.frames) expect(Buffer.byteLength(f)).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
    const reassembler = new Reassembler();
    let text: string | undefined;
    for (const p of parts) text = reassembler.accept(p) ?? text;
    const message = JSON.parse(text as string);
    const received = Buffer.from(JSON.stringify(message.payload.definition.document), 'utf8');
    expect(received.equals(bytes)).toBe(true);
    expect(createHash('sha256').update(received).digest('hex')).toBe(stored.sha256);
    expect(message.payload.definition).toMatchObject({ format: 'openapi-3.0', sha256: stored.sha256 });

    // The reference client applies it to its catalog, document included.
    await waitUntil(() => c.catalog.has('big-api'));
    expect(JSON.stringify(c.catalog.get('big-api')?.definition?.document)).toBe(bytes.toString('utf8'));
    await raw.close();
    await world.relay.catalog.deleteApi('big-api');
  });

  it('a control plane that disconnects during discovery recovers every missed event with sync { since }', async () => {
    const first = client();
    await first.connect();
    const since = first.lastSeq as number;
    expect(since).toBeGreaterThan(0);
    await seed(emu.apiGateway(), {
      apis: [{ key: 'late', name: 'Late', stages: ['prod'], models: [] }],
      usagePlans: [{ key: 'late-plan', name: 'LatePlan', stages: [{ api: 'late', stage: 'prod' }] }],
    });
    const release = world.holdDiscovery();
    const calls = world.discoveryCalls();
    const pending = first.request({ action: 'discover' }).catch((e: Error) => e);
    await waitUntil(() => world.discoveryCalls() > calls); // the run has started and is held
    await first.close();
    expect(await pending).toBeInstanceOf(Error);
    release();
    await world.idle();
    const missed = await world.relay.outbox.listAfter(since);
    expect(missed.map((e) => e.event)).toEqual(
      expect.arrayContaining(['api.upserted', 'discovery.completed']),
    );

    const second = client({ lastSeq: since });
    const events = collectEvents(second);
    await second.connect();
    const replayed = events.filter((e) => e.seq > 0);
    expect(replayed.map((e) => e.seq)).toEqual(missed.map((e) => e.seq));
    expect(events.at(-1)).toMatchObject({
      event: 'sync.completed',
      payload: { seq: missed.at(-1)?.seq, snapshot: false },
    });
    expect([...second.catalog.values()].map((a) => a.name)).toContain('Late');
    expect(second.lastSeq).toBe(missed.at(-1)?.seq);
  });

  it('sync with a since ahead of the outbox (another ledger) falls back to a snapshot', async () => {
    const c = client({ syncOnConnect: false });
    const events = collectEvents(c);
    await c.connect();
    const reply = await c.request({ action: 'sync', since: (await world.relay.outbox.latestSeq()) + 100 });
    expect(reply.payload).toMatchObject({
      snapshot: true,
      sent: (await world.relay.catalog.listAll()).length,
    });
    expect(events.at(-1)).toMatchObject({ event: 'sync.completed', payload: { snapshot: true } });
  });

  it('sync with a since older than the outbox keeps (events expired) falls back to a snapshot', async () => {
    const c = client({ syncOnConnect: false });
    const events = collectEvents(c);
    await c.connect();
    const [connectionId] = world.ws
      .connections()
      .map((x) => x.connectionId)
      .filter(Boolean)
      .slice(-1);
    // The same ledger seen 30 days later: every outbox event has passed its TTL.
    const later = new Outbox(world.table, {
      retentionDays: 7,
      now: () => new Date(Date.now() + 30 * 86_400_000),
    });
    const service = new RelayService({
      publisher: world.relay.publisher,
      connections: world.relay.connections,
      catalog: world.relay.catalog,
      outbox: later,
      invoker: { invokeAsync: async () => {}, invoke: async () => undefined },
      agent: { agentId: 'test-agent', version: '0', sources: [] },
    });
    const result = await service.sync(connectionId as string, { since: 1 });
    expect(result).toMatchObject({ snapshot: true, seq: await world.relay.outbox.latestSeq() });
    await waitUntil(() => events.some((e) => e.event === 'sync.completed'));
    expect(events.filter((e) => e.event === 'api.upserted').length).toBe(result.sent);
    // With the events still kept, the same since replays instead.
    expect(await world.relay.service.sync(connectionId as string, { since: 1 })).toMatchObject({
      snapshot: false,
    });
  });

  it('removes a stale connection record after GoneException and still delivers to live ones', async () => {
    const connections = new ConnectionRepository(world.table);
    await connections.put({ connectionId: 'stale-connection-id' });
    const c = client({ syncOnConnect: false });
    const events = collectEvents(c);
    await c.connect();
    await world.idle();
    const [event] = await world.relay.outbox.append([
      {
        event: EventType.SUBSCRIPTION_REVOKED,
        payload: { subscriptionId: 's', apiId: 'a', planId: 'p', reason: 'TEST' },
      },
    ]);
    const report = await world.relay.publisher.publish([event as never]);
    expect(report.gone).toBe(1);
    expect(report.failed).toBe(0);
    expect(await connectionRecords()).not.toContain('stale-connection-id');
    await waitUntil(() => events.some((e) => e.seq === event?.seq));
  });

  it('leaves no handler errors behind', () => {
    expect(world.handlerErrors).toEqual([]);
  });
});

async function waitUntil(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** An OpenAPI 3 document of at least `size` bytes, with random (poorly compressible) descriptions. */
function bigOpenApi(size: number): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  let i = 0;
  let bytes = 0;
  while (bytes < size) {
    const description = randomBytes(3000).toString('base64');
    paths[`/resource${i}`] = {
      get: { summary: `Get ${i}`, description, responses: { '200': { description: 'OK' } } },
    };
    bytes += description.length + 100;
    i++;
  }
  return { openapi: '3.0.1', info: { title: 'Big', version: '1' }, paths };
}
