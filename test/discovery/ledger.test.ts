import { randomBytes } from 'node:crypto';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFINITION_PART_BYTES,
  DefinitionStore,
  type DiscoverySummary,
  emptyCounts,
  keys,
  LeaseRepository,
  type LedgerTable,
  RunRepository,
  sha256Hex,
} from '../../layers/federation-core/src/index.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { createLedger } from './harness.js';

/** A 5 MB OpenAPI-like JSON document, half random (poorly compressible) so it spans many parts. */
function bigDocument(bytes: number): Uint8Array {
  const paths: Record<string, unknown> = {};
  let i = 0;
  let size = 0;
  while (size < bytes) {
    const description = randomBytes(600).toString('base64');
    paths[`/resource${i}/{id}`] = {
      get: { operationId: `get${i}`, description, responses: { '200': { description: 'ok' } } },
    };
    size += description.length + 60;
    i++;
  }
  const text = JSON.stringify({
    openapi: '3.0.1',
    info: { title: 'Big', version: '1' },
    paths,
    note: 'é ü 漢字',
  });
  return new TextEncoder().encode(text);
}

describe('ledger: definitions, runs, leases', () => {
  let emu: Emulator;
  let table: LedgerTable;
  beforeAll(async () => {
    emu = await startEmulator();
    table = await createLedger(emu);
  });
  afterAll(async () => {
    await emu?.stop();
  });

  describe('DefinitionStore', () => {
    it('round-trips a 5 MB document byte-identical across several ≤350 KB parts', async () => {
      const store = new DefinitionStore(table);
      const bytes = bigDocument(5 * 1024 * 1024);
      expect(bytes.length).toBeGreaterThan(5 * 1024 * 1024);
      const stored = await store.put(bytes);
      expect(stored.sha256).toBe(sha256Hex(bytes));
      expect(stored.written).toBe(true);
      expect(stored.parts).toBeGreaterThan(3);
      const part = await table.client.send(
        new GetCommand({ TableName: table.tableName, Key: keys.definitionPart(stored.sha256, 1) }),
      );
      expect((part.Item!.data as Uint8Array).length).toBeLessThanOrEqual(DEFINITION_PART_BYTES);
      const back = await store.get(stored.sha256);
      expect(back).toBeDefined();
      expect(Buffer.compare(Buffer.from(back!), Buffer.from(bytes))).toBe(0);
      expect(((await store.getDocument(stored.sha256)) as { note: string }).note).toBe('é ü 漢字');
    });

    it('writes a document once: a second put costs one read and writes nothing', async () => {
      const store = new DefinitionStore(table);
      const bytes = new TextEncoder().encode('{"swagger":"2.0","info":{"title":"small"}}');
      expect((await store.put(bytes)).written).toBe(true);
      const again = await store.put(bytes);
      expect(again.written).toBe(false);
      expect(again.parts).toBe(1);
      expect(await store.has(again.sha256)).toBe(true);
    });

    it('stores concurrent puts of the same document once', async () => {
      const store = new DefinitionStore(table);
      const bytes = bigDocument(800 * 1024);
      const results = await Promise.all([store.put(bytes), store.put(bytes), store.put(bytes)]);
      expect(new Set(results.map((r) => r.sha256)).size).toBe(1);
      expect(Buffer.compare(Buffer.from((await store.get(results[0]!.sha256))!), Buffer.from(bytes))).toBe(0);
    });

    it('answers undefined for an unknown sha256', async () => {
      expect(await new DefinitionStore(table).get('0'.repeat(64))).toBeUndefined();
    });
  });

  describe('RunRepository', () => {
    const summary = (runId: string, startedAt: string): DiscoverySummary => ({
      runId,
      startedAt,
      finishedAt: startedAt,
      durationMs: 1,
      full: false,
      sources: ['default'],
      partial: false,
      counts: emptyCounts(),
      apiCalls: { GetRestApis: 1 },
      throttles: 0,
      accountRegions: [],
      accountRegionCount: 0,
      accountRegionsByStatus: {},
      errors: [],
      errorCount: 0,
      errorsByCode: {},
      events: 0,
    });

    it('stores RUN# records and answers the latest by start time', async () => {
      const runs = new RunRepository(await createLedger(emu));
      expect(await runs.latest()).toBeUndefined();
      await runs.put(summary('r2', '2025-01-02T00:00:00.000Z'));
      await runs.put(summary('r1', '2025-01-01T00:00:00.000Z'));
      await runs.put(summary('r3', '2025-01-03T00:00:00.000Z'));
      expect((await runs.latest())?.runId).toBe('r3');
      expect((await runs.recent(2)).map((r) => r.runId)).toEqual(['r3', 'r2']);
      expect(await runs.get('r1')).toEqual(summary('r1', '2025-01-01T00:00:00.000Z'));
    });
  });

  describe('LeaseRepository', () => {
    it('grants a lease to one of 20 concurrent owners', async () => {
      const leases = new LeaseRepository(table);
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => leases.acquire('race', `owner-${i}`, 60_000)),
      );
      const winners = results.filter((r) => r !== undefined);
      expect(winners).toHaveLength(1);
      expect((await leases.get('race'))?.owner).toBe(winners[0]!.owner);
    });

    it('refuses a held lease, lets its owner renew and release it, then grants it again', async () => {
      const leases = new LeaseRepository(table);
      expect(await leases.acquire('held', 'a', 60_000)).toBeDefined();
      expect(await leases.acquire('held', 'b', 60_000)).toBeUndefined();
      expect(await leases.renew('held', 'b', 60_000)).toBe(false);
      expect(await leases.renew('held', 'a', 60_000)).toBe(true);
      expect(await leases.release('held', 'b')).toBe(false);
      expect(await leases.release('held', 'a')).toBe(true);
      expect(await leases.acquire('held', 'b', 60_000)).toBeDefined();
    });

    it('takes over an expired lease (DynamoDB TTL deletes late: expiry is checked in the condition)', async () => {
      let now = new Date('2025-01-01T00:00:00Z');
      const leases = new LeaseRepository(table, { now: () => now });
      expect(await leases.acquire('expiring', 'a', 1_000)).toBeDefined();
      expect(await leases.acquire('expiring', 'b', 1_000)).toBeUndefined();
      now = new Date(now.getTime() + 1_000);
      expect(await leases.get('expiring')).toBeUndefined();
      expect(await leases.acquire('expiring', 'b', 1_000)).toBeDefined();
      // the old owner lost it: it can neither renew nor release
      expect(await leases.renew('expiring', 'a', 1_000)).toBe(false);
      expect(await leases.release('expiring', 'a')).toBe(false);
    });
  });
});
