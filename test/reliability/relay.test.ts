/**
 * Relay delivery: 100 control-plane WebSocket connections to the relay (the real handlers behind the
 * WebSocket API emulator) each receive every event of a discovery run, in `seq` order; clients that
 * drop mid-run, or miss a whole run, recover exactly what they missed with `sync { since }`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSeed, redeployStage } from '../../emulator/seeder.js';
import type { OutboxEvent } from '../../layers/federation-core/src/index.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { type RawConnection, type RelayHarness, startRelayHarness } from '../support/relay-harness.js';
import { SecretsHygiene, scanAgent } from './hygiene.js';
import { ScenarioReport } from './report.js';

const CLIENTS = 100;
const DROPPERS = 5;
const APIS = 8;

type Message = Record<string, unknown>;
const isOutboxEvent = (m: Message) =>
  m.type === 'event' && typeof m.seq === 'number' && (m.seq as number) > 0;
const seqsOf = (messages: readonly Message[], after: number) =>
  messages.filter((m) => isOutboxEvent(m) && (m.seq as number) > after).map((m) => m.seq as number);

describe('relay delivery to 100 control planes', () => {
  const report = new ScenarioReport('relay');
  const hygiene = new SecretsHygiene();
  let emu: Emulator;
  let agent: RelayHarness;
  let clients: RawConnection[] = [];

  /** Runs discovery through a `discover` command and returns the run's outbox events. */
  const discoverVia = async (client: RawConnection, since: number): Promise<OutboxEvent[]> => {
    const reply = await client.command({ action: 'discover' }, 60_000);
    expect(reply).toMatchObject({ status: 'SUCCEEDED' });
    const events = await agent.relay.outbox.listAfter(since, 10_000);
    expect(events.at(-1)?.event).toBe('discovery.completed');
    return events;
  };

  /** Waits until `client` has (live) the event with `seq`, or until the timeout. */
  const received = (client: RawConnection, seq: number, timeoutMs = 30_000) =>
    client.waitFor((m) => m.type === 'event' && m.seq === seq, timeoutMs);

  beforeAll(async () => {
    hygiene.start();
    emu = await startEmulator();
    agent = await startRelayHarness(emu, {
      seed: generateSeed({ apis: APIS, stages: ['prod'] }),
      // Ample retries: the first run meets 30 % injected API Gateway faults and must still complete.
      discovery: { retry: { baseDelayMs: 5, maxDelayMs: 40, maxAttempts: 12, maxRetryAfterMs: 50 } },
    });
    hygiene.secret(agent.token);
    clients = await Promise.all(Array.from({ length: CLIENTS }, () => agent.connect()));
    await Promise.all(clients.map((c) => c.waitFor((m) => m.event === 'hello')));
    report.add({ operationsAttempted: CLIENTS, survived: CLIENTS });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await agent?.stop();
    await emu?.stop();
    hygiene.stop();
    report.flush();
  });

  it('delivers every event of a run to each of 100 connections in seq order, and sync recovers mid-run drops', async () => {
    expect(await agent.relay.connections.count()).toBe(CLIENTS);
    const since = await agent.relay.outbox.latestSeq();
    // Some clients drop after the third event of the run: a connection lost mid-run.
    const droppers = clients.slice(1, 1 + DROPPERS);
    const dropped = droppers.map(
      (c) =>
        new Promise<number>((resolve) => {
          c.socket.on('message', () => {
            const seqs = seqsOf(c.messages, since);
            if (seqs.length === 3 && c.socket.readyState === c.socket.OPEN) {
              c.socket.terminate();
              resolve(seqs[2]!);
            }
          });
        }),
    );
    // The run itself reads API Gateway through 30 % injected faults.
    const faultSeed = report.seed('discoveryFaults', 9909);
    emu.proxy.resetStats();
    emu.proxy.setFaults({
      seed: faultSeed,
      rates: { throttle429: 0.1, throttle429RetryAfter: 0.05, error500: 0.05, error503: 0.05, reset: 0.05 },
    });
    let events: OutboxEvent[];
    try {
      events = await discoverVia(clients[0]!, since);
    } finally {
      emu.proxy.setFaults(undefined);
      report.add({ faultsInjected: emu.proxy.stats.faults.total });
    }
    expect(emu.proxy.stats.faults.total).toBeGreaterThan(0);
    const expected = events.map((e) => e.seq);
    expect(expected.length).toBe(APIS + 1);
    const last = expected.at(-1)!;
    const stayers = clients.filter((c) => !droppers.includes(c));
    await Promise.all(stayers.map((c) => received(c, last)));
    for (const client of stayers) expect(seqsOf(client.messages, since)).toEqual(expected);

    // The droppers come back with a new connection and `sync { since: <last seq they applied> }`.
    const lastSeen = await Promise.all(dropped);
    const recovered = await Promise.all(
      droppers.map(async (old, i) => {
        const client = await agent.connect();
        const reply = await client.command({ action: 'sync', since: lastSeen[i] }, 30_000);
        expect(reply).toMatchObject({ status: 'SUCCEEDED', payload: { seq: last, snapshot: false } });
        const all = [...seqsOf(old.messages, since), ...seqsOf(client.messages, lastSeen[i]!)];
        return { client, all };
      }),
    );
    for (const { all } of recovered) expect(all).toEqual(expected);
    clients.push(...recovered.map((r) => r.client));
    report.add({
      operationsAttempted: 1 + DROPPERS,
      survived: 1 + DROPPERS,
      eventsProduced: expected.length * CLIENTS,
      eventsDelivered:
        stayers.reduce((n, c) => n + new Set(seqsOf(c.messages, since)).size, 0) +
        recovered.reduce((n, r) => n + new Set(r.all).size, 0),
    });
  });

  it('lets clients that missed a whole run catch up with sync, in order, with nothing twice', async () => {
    const live = clients.filter((c) => c.socket.readyState === c.socket.OPEN);
    const away = live.slice(-10);
    const cursors = away.map((c) => Math.max(0, ...seqsOf(c.messages, 0)));
    await Promise.all(away.map((c) => c.close()));
    await agent.idle();
    // Change half the APIs, so the next run upserts them.
    const changed = Object.values(agent.seeded.apis).slice(0, APIS / 2);
    for (const api of changed) await redeployStage(emu.apiGateway(), api.restApiId, 'prod');
    const present = live.filter((c) => !away.includes(c));
    const since = await agent.relay.outbox.latestSeq();
    const events = await discoverVia(present[0]!, since);
    expect(events.filter((e) => e.event === 'api.upserted')).toHaveLength(changed.length);
    const expectedRun = events.map((e) => e.seq);
    await Promise.all(present.map((c) => received(c, expectedRun.at(-1)!)));
    for (const client of present) expect(seqsOf(client.messages, since)).toEqual(expectedRun);

    const back = await Promise.all(
      away.map(async (_, i) => {
        const client = await agent.connect();
        const reply = await client.command({ action: 'sync', since: cursors[i] }, 30_000);
        expect(reply).toMatchObject({ status: 'SUCCEEDED' });
        return seqsOf(client.messages, cursors[i]!);
      }),
    );
    const all = (await agent.relay.outbox.listAfter(0, 10_000)).map((e) => e.seq);
    for (const [i, seqs] of back.entries()) expect(seqs).toEqual(all.filter((s) => s > cursors[i]!));
    report.add({
      operationsAttempted: 1 + away.length,
      survived: 1 + away.length,
      eventsProduced: expectedRun.length * (present.length + away.length),
      eventsDelivered:
        present.reduce((n, c) => n + new Set(seqsOf(c.messages, since)).size, 0) +
        back.reduce((n, seqs) => n + new Set(seqs.filter((s) => s > since)).size, 0),
    });
  });

  it('reported no handler failure and leaks no token into logs, ledger items or error messages', async () => {
    const leaks = await scanAgent(agent, hygiene, report);
    expect(agent.handlerErrors).toEqual([]);
    expect(hygiene.lines().length).toBeGreaterThan(0);
    expect(leaks).toEqual([]);
  });
});
