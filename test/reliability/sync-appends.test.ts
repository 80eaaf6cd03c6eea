/**
 * Issue 15.3: a client that keeps calling `sync since <its cursor>` receives every event ever stored, in
 * order, and its cursor never passes an event it has not received — under concurrent appenders (held
 * with delays), crashed appenders (their writes never sent) and a snapshot taken while discovery has
 * appended its events but not yet written the catalog.
 */
import { type DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed } from '../../emulator/seeder.js';
import {
  type CatalogRepository,
  type ConnectionPublisher,
  DiscoveryEngine,
  discoverySettingsOf,
  EventType,
  type LedgerTable,
  Outbox,
  parseAgentConfig,
  RelayService,
} from '../../layers/federation-core/src/index.js';
import { createLedger, discoveryHarness, TEST_RETRY } from '../discovery/harness.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { ScenarioReport } from './report.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Posted {
  type: string;
  seq: number;
  event: string;
  payload: { n?: number; seq?: number; id?: string; snapshot?: boolean };
}

/** A relay whose `@connections` is an array: what one client receives. */
function relayOn(table: LedgerTable, catalog?: Partial<CatalogRepository>) {
  const received: Posted[] = [];
  const publisher = {
    render: async (e: { seq?: number; event: string; payload: unknown }) => ({
      type: 'event',
      seq: e.seq ?? 0,
      event: e.event,
      payload: e.payload,
    }),
    postMessage: async (_id: string, message: Posted) => {
      received.push(message);
      return 'sent';
    },
  } as unknown as ConnectionPublisher;
  const relay = new RelayService({
    publisher,
    outbox: new Outbox(table, { retentionDays: 7 }),
    catalog: (catalog ?? { listAll: async () => [] }) as CatalogRepository,
    connections: {} as never,
    invoker: {} as never,
    agent: { agentId: 'a', version: '0', sources: [] },
    replayPageSize: 3,
  });
  return { relay, received };
}

/** A ledger client whose outbox writes are delayed, or never sent (a crashed appender). */
function appenderClient(table: LedgerTable, behaviour: { delayMs: number; crash: boolean }): LedgerTable {
  const inner = table.client;
  const client = {
    send: async (command: { constructor: { name: string } }) => {
      const name = command.constructor.name;
      const isWrite = name === 'BatchWriteCommand' || name === 'TransactWriteCommand';
      if (isWrite && behaviour.crash) throw new Error('appender crashed before its write');
      if (isWrite && behaviour.delayMs > 0) await sleep(behaviour.delayMs);
      return inner.send(command as never);
    },
  } as unknown as DynamoDBDocumentClient;
  return { client, tableName: table.tableName };
}

async function storedSeqs(table: LedgerTable): Promise<number[]> {
  const out = await table.client.send(
    new QueryCommand({
      TableName: table.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :ev)',
      ExpressionAttributeValues: { ':pk': 'OUTBOX', ':ev': 'EVENT#' },
      ConsistentRead: true,
    }),
  );
  return (out.Items ?? []).map((i) => i.seq as number);
}

describe('sync under concurrent and crashed appenders (issue 15.3)', () => {
  const report = new ScenarioReport('syncAppends');
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu?.stop();
    report.flush();
  });

  it('appends `once` under an id at most once: a repeat appends nothing and finds the first one’s seq', async () => {
    const table = await createLedger(emu);
    const outbox = new Outbox(table, { retentionDays: 7 });
    await outbox.append([{ event: EventType.API_REMOVED, payload: { n: 0 } }]);
    const event = { event: EventType.DISCOVERY_COMPLETED, payload: { runId: 'r1' } };
    const first = await outbox.append([event], { once: 'discovery.completed#r1' });
    expect(first.map((e) => e.seq)).toEqual([2]);
    // The repeat, concurrently with other appends (the counter moves under it).
    const [again] = await Promise.all([
      outbox.append([event], { once: 'discovery.completed#r1' }),
      new Outbox(table, { retentionDays: 7 }).append([{ event: EventType.API_REMOVED, payload: { n: 1 } }]),
    ]);
    expect(again).toEqual([]);
    expect(await outbox.appendedOnceAt('discovery.completed#r1')).toBe(2);
    expect(await outbox.appendedOnceAt('discovery.completed#r2')).toBeUndefined();
    const stored = await outbox.listAfter(0);
    expect(stored.filter((e) => e.event === EventType.DISCOVERY_COMPLETED)).toHaveLength(1);
    expect(stored.map((e) => e.seq)).toEqual([1, 2, 3]);
  });

  it('never moves the cursor past an event a slower concurrent append writes later', async () => {
    const table = await createLedger(emu);
    const { relay, received } = relayOn(table);
    const slow = new Outbox(appenderClient(table, { delayMs: 400, crash: false }), { retentionDays: 7 });
    const fast = new Outbox(table, { retentionDays: 7 });
    const ev = (n: number) => ({ event: EventType.API_REMOVED, payload: { n } });
    const slowAppend = slow.append([ev(1), ev(2)]);
    await sleep(100);
    await fast.append([ev(3)]);
    const first = await relay.sync('c', { since: 0 });
    await slowAppend;
    const second = await relay.sync('c', { since: first.seq });
    const events = received.filter((m) => m.event !== EventType.SYNC_COMPLETED);
    report.add({
      operationsAttempted: 2,
      eventsProduced: 3,
      eventsDelivered: new Set(events.map((m) => m.seq)).size,
    });
    expect(second.seq).toBe(3);
    expect(events.map((m) => m.payload.n).sort()).toEqual([1, 2, 3]);
    expect(events.map((m) => m.seq)).toEqual([1, 2, 3]);
    report.add({ survived: 2 });
  });

  it('property: every stored event is received once, in order, whatever the appenders do', async () => {
    const appender = fc.record({
      batches: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
      delayMs: fc.integer({ min: 0, max: 60 }),
      crash: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(appender, { minLength: 2, maxLength: 4 }), async (appenders) => {
        const appendCount = appenders.reduce((sum, a) => sum + a.batches.length, 0);
        report.add({
          operationsAttempted: appendCount,
          faultsInjected: appenders.filter((a) => a.crash).reduce((sum, a) => sum + a.batches.length, 0),
        });
        const table = await createLedger(emu);
        const { relay, received } = relayOn(table);
        let n = 0;
        const appends = appenders.map(async (spec) => {
          const outbox = new Outbox(appenderClient(table, spec), { retentionDays: 7 });
          for (const size of spec.batches) {
            const batch = Array.from({ length: size }, () => ({
              event: EventType.API_REMOVED,
              payload: { n: n++ },
            }));
            await outbox.append(batch).catch(() => undefined); // a crashed appender is gone
            await sleep(spec.delayMs / 2);
          }
        });
        let cursor = 0;
        let done = false;
        const all = Promise.all(appends).then(() => {
          done = true;
        });
        // The client: keeps syncing from its cursor while the appenders run, then once more.
        while (!done) {
          cursor = (await relay.sync('c', { since: cursor })).seq;
          await sleep(7);
        }
        await all;
        for (let i = 0; i < 3; i++) cursor = (await relay.sync('c', { since: cursor })).seq;
        const events = received.filter((m) => m.event !== EventType.SYNC_COMPLETED);
        const stored = await storedSeqs(table);
        report.add({
          eventsProduced: stored.length,
          eventsDelivered: new Set(events.map((m) => m.seq)).size,
        });
        expect(events.map((m) => m.seq)).toEqual(stored);
        expect(cursor).toBe(stored.at(-1) ?? 0);
        report.add({ survived: appendCount });
      }),
      { numRuns: 8, seed: report.seed('appenders', 1503) },
    );
  });

  it('a snapshot taken while discovery has appended but not written the catalog misses nothing', async () => {
    await emu.reset();
    await seed(emu.apiGateway(), {
      apis: [{ key: 'a', name: 'Alpha', stages: ['prod'] }],
      usagePlans: [{ key: 'gold', name: 'Gold', stages: [{ api: 'a', stage: 'prod' }] }],
    });
    const h = await discoveryHarness(emu);
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let writing: () => void = () => {};
    const catalogWriteStarted = new Promise<void>((r) => {
      writing = r;
    });
    const catalog = Object.create(h.catalog) as CatalogRepository;
    catalog.putApi = async (api) => {
      writing();
      await held;
      return h.catalog.putApi(api);
    };
    const agent = parseAgentConfig({});
    const engine = new DiscoveryEngine(
      { ...h.deps, catalog },
      { ...discoverySettingsOf(agent, emu.region), retry: TEST_RETRY },
    );
    const run = engine.run();
    await catalogWriteStarted;
    const { relay, received } = relayOn(h.table, h.catalog);
    const snapshot = await relay.sync('c', {});
    release();
    await run;
    await relay.sync('c', { since: snapshot.seq });
    const apis = received.filter((m) => m.event === EventType.API_UPSERTED);
    report.add({ operationsAttempted: 1 });
    expect(
      apis.length,
      'the new API reaches the client by the snapshot or the replay after it',
    ).toBeGreaterThan(0);
    report.add({ survived: 1 });
  });
});
