import { DeleteConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../client/cli.js';
import { ControlPlaneClient } from '../../client/control-plane-client.js';
import { EventType, type OutboxEvent } from '../../layers/federation-core/src/index.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { type RelayHarness, startRelayHarness, TEST_AGENT } from '../support/relay-harness.js';

let emu: Emulator;
let world: RelayHarness;

beforeAll(async () => {
  emu = await startEmulator();
  world = await startRelayHarness(emu, TEST_AGENT);
});

afterAll(async () => {
  await world?.stop();
  await emu?.stop();
});

async function cli(argv: string[], env: Record<string, string> = {}) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await main(argv, {
    stdout: (l) => stdout.push(l),
    stderr: (l) => stderr.push(l),
    env,
    untilStopped: () => new Promise((r) => setTimeout(r, 500)),
  });
  return { code, stdout, stderr };
}

async function waitUntil(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('apigw-fed CLI', () => {
  it('discover --json prints the events, then the SUCCEEDED reply, one JSON object a line', async () => {
    const { code, stdout } = await cli(['discover', '--url', world.ws.url, '--json'], {
      FED_RELAY_TOKEN: world.token,
    });
    expect(code).toBe(0);
    const lines = stdout.map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.event === 'api.upserted')).toHaveLength(2);
    expect(lines.at(-1)).toMatchObject({ type: 'reply', status: 'SUCCEEDED' });
  });

  it('discover prints the run summary: counts, account-regions, duration', async () => {
    const { code, stdout } = await cli(['discover', '--url', world.ws.url], { FED_RELAY_TOKEN: world.token });
    expect(code).toBe(0);
    expect(stdout.at(-1)).toMatch(/^discovery done: discovered 2, .*, 1 account-region, \d+ ms$/);
  });

  it('apis lists every API and plan as a table, and as JSON lines', async () => {
    const table = await cli(['apis', '--url', world.ws.url, '--token', world.token]);
    expect(table.code).toBe(0);
    expect(table.stdout[0]).toMatch(/^API\s+STAGE\s+API ID\s+PLAN\s+PLAN ID$/);
    expect(table.stdout.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(['Orders', 'Pets']);
    expect(table.stdout.join('\n')).toMatch(/Gold/);
    const json = await cli(['apis', '--url', world.ws.url, '--token', world.token, '--json']);
    const apis = json.stdout.map((l) => JSON.parse(l));
    expect(apis.map((a) => a.name)).toEqual(['Orders', 'Pets']);
    expect(apis[1].plans[0]).toMatchObject({ name: 'Gold', security: 'API_KEY' });
  });

  it('subscribe and unsubscribe print the agent answer; a FAILED reply exits 1', async () => {
    const apis = (await cli(['apis', '--url', world.ws.url, '--token', world.token, '--json'])).stdout.map(
      (l) => JSON.parse(l),
    );
    const pets = apis.find((a) => a.name === 'Pets');
    const sub = await cli([
      'subscribe',
      '--url',
      world.ws.url,
      '--token',
      world.token,
      '--api',
      pets.id,
      '--plan',
      pets.plans[0].id,
      '--app-id',
      'app-7',
      '--app-name',
      'Portal',
      '--subscription-id',
      'cli-sub-1',
      '--json',
    ]);
    expect(sub.code).toBe(0);
    expect(JSON.parse(sub.stdout[0] as string)).toMatchObject({
      status: 'SUCCEEDED',
      payload: { subscriptionId: 'cli-sub-1', status: 'ACTIVE' },
    });
    const unsub = await cli([
      'unsubscribe',
      '--url',
      world.ws.url,
      '--token',
      world.token,
      '--subscription-id',
      'cli-sub-1',
    ]);
    expect(unsub.code).toBe(0);
    expect(unsub.stdout.join('\n')).toMatch(/status: REVOKED/);
    const bad = await cli([
      'subscribe',
      '--url',
      world.ws.url,
      '--token',
      world.token,
      '--api',
      'nope',
      '--plan',
      'nope',
      '--app-id',
      'a',
      '--app-name',
      'b',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.join('\n')).toMatch(/FAILED NOT_FOUND/);
  });

  it('ping prints the agent status', async () => {
    const { code, stdout } = await cli(['ping', '--url', world.ws.url, '--token', world.token]);
    expect(code).toBe(0);
    expect(stdout.join('\n')).toMatch(/agentId: test-agent/);
    expect(stdout.join('\n')).toMatch(/connections: 1/);
  });

  it('connect streams events until stopped', async () => {
    const { code, stdout, stderr } = await cli(['connect', '--url', world.ws.url, '--token', world.token]);
    expect(code).toBe(0);
    expect(stdout[0]).toMatch(/^hello from test-agent 9\.9\.9-test/);
    expect(stdout.some((l) => /sync\.completed at #\d+ \(snapshot\)/.test(l))).toBe(true);
    expect(stderr.join('\n')).toMatch(/connected to/);
  });

  it('exits 1 with a clear message for a wrong token, 2 for usage errors', async () => {
    const wrong = await cli(['ping', '--url', world.ws.url, '--token', 'wrong']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.join('\n')).toMatch(/refused the connection \(403\): check the token/);
    expect((await cli(['ping', '--url', world.ws.url])).code).toBe(2);
    expect((await cli(['unsubscribe', '--url', world.ws.url, '--token', 't'])).stderr.join('')).toMatch(
      /--subscription-id/,
    );
    expect((await cli(['frobnicate'])).code).toBe(2);
    expect((await cli(['ping', '--bogus'])).code).toBe(2);
  });
});

describe('ControlPlaneClient', () => {
  it('close() during the upgrade keeps no connection: connect() rejects', async () => {
    const client = new ControlPlaneClient({ url: world.ws.url, token: world.token, reconnect: false });
    const connecting = client.connect();
    await client.close();
    await expect(connecting).rejects.toThrow(/closed/i);
    expect(client.connected).toBe(false);
  });

  it('reconnects with backoff after the relay drops it, and re-syncs from its cursor', async () => {
    const c = new ControlPlaneClient({
      url: world.ws.url,
      token: world.token,
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    });
    c.on('error', () => undefined);
    const syncs: { seq: number; snapshot: boolean }[] = [];
    c.on('synced', (s) => syncs.push(s));
    let reconnecting = 0;
    c.on('reconnecting', () => reconnecting++);
    await c.connect();
    expect(syncs).toEqual([{ seq: c.lastSeq, snapshot: true }]);
    const [connection] = world.ws.connections();
    const management = world.factory.apiGatewayManagement(world.ws.connectionsUrl);
    await management.send(new DeleteConnectionCommand({ ConnectionId: connection?.connectionId }));
    await waitUntil(() => syncs.length === 2);
    expect(reconnecting).toBe(1);
    expect(syncs[1]).toEqual({ seq: c.lastSeq, snapshot: false });
    expect(c.catalog.size).toBeGreaterThanOrEqual(2);
    await c.close();
  });

  it('detects a gap in the event sequence and catches up with sync', async () => {
    const c = new ControlPlaneClient({ url: world.ws.url, token: world.token, reconnect: false });
    c.on('error', () => undefined);
    const seen: number[] = [];
    c.on('event', (e) => {
      if (e.seq > 0) seen.push(e.seq);
    });
    await c.connect();
    await world.idle();
    const revoked = (id: string) => ({
      event: EventType.SUBSCRIPTION_REVOKED,
      payload: { subscriptionId: id, apiId: 'a', planId: 'p', reason: 'TEST' },
    });
    const [lost, later] = (await world.relay.outbox.append([
      revoked('lost'),
      revoked('later'),
    ])) as OutboxEvent[];
    // Only the later event is pushed: the client sees a gap and replays from its cursor.
    await world.relay.publisher.publish([later as OutboxEvent]);
    await waitUntil(() => c.lastSeq === later?.seq);
    expect(seen).toContain(lost?.seq);
    await c.close();
  });
});
