/**
 * Bounded items (issues 15.5 and 16): a run summary with thousands of errors stays under DynamoDB's
 * 400 KB item limit, which moto enforces like DynamoDB ("Item size has exceeded the maximum allowed
 * size"): the run is recorded and its `discovery.completed` appended instead of the whole run failing.
 * The same for a fanned-out run: a unit's `UNIT#` item keeps its errors bounded, so the unit ends.
 * And a run over an organisation's account-regions: the summary lists at most
 * {@link SUMMARY_ACCOUNT_REGIONS_MAX} of them and counts all, so the `discovery.completed` of a fanned-out
 * run of 1,798 account-regions (the fewest whose full list passes moto's limit) is appended and the run
 * answered; before, moto refused the event and the run's completion failed. And the accounts of an
 * organisation without the agent's role: the summary lists at most {@link SUMMARY_WITHOUT_ROLE_MAX} and
 * counts all (`organization.withoutRoleCount`), so a run whose summary is otherwise at its largest (500
 * account-regions and 100 errors of the largest sizes) completes with {@link WITHOUT_ROLE} of them, the
 * fewest whose full list passes moto's limit.
 */

import { randomUUID } from 'node:crypto';
import {
  type APIGatewayClient,
  GetRestApisCommand,
  GetStagesCommand,
  GetUsagePlansCommand,
} from '@aws-sdk/client-api-gateway';
import { type AttributeValue, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AccountRegionStatus,
  type AccountRegionSummary,
  boundAccountRegions,
  completeRun,
  DiscoveryEngine,
  discoverySettingsOf,
  EventType,
  emptyCounts,
  keys,
  parseAgentConfig,
  runSummary,
  SUMMARY_ACCOUNT_REGIONS_MAX,
  SUMMARY_ERRORS_MAX,
  SUMMARY_WITHOUT_ROLE_MAX,
  startFanOutRun,
  summarizeRun,
  type UnitOutcome,
  unitKey,
} from '../../layers/federation-core/src/index.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { ITEM_LIMIT, itemSize, MOTO_ITEM_LIMIT, motoItemSize, motoValueSize } from '../support/item-size.js';
import { type FanOutHarness, fanOutHarness } from './fan-out-harness.js';
import { discoveryHarness } from './harness.js';

const MANY = 5_000;

/**
 * API Gateway as a huge account would answer: `MANY` REST APIs on one usage plan, and GetStages
 * failing for each of them (5xx after retries). No real API Gateway behind it.
 */
function failingApiGateway(): APIGatewayClient {
  const ids = Array.from({ length: MANY }, (_, i) => `r${String(i).padStart(9, '0')}`);
  return {
    send: async (command: unknown) => {
      if (command instanceof GetRestApisCommand)
        return { items: ids.map((id) => ({ id, name: `API ${id}` })) };
      if (command instanceof GetUsagePlansCommand)
        return {
          items: [{ id: 'plan1', name: 'Gold', apiStages: ids.map((apiId) => ({ apiId, stage: 'prod' })) }],
        };
      if (command instanceof GetStagesCommand)
        throw Object.assign(new Error('Internal server error'), {
          name: 'InternalFailure',
          $fault: 'server',
          $metadata: { httpStatusCode: 500 },
        });
      throw new Error(`unexpected ${String(command)}`);
    },
  } as unknown as APIGatewayClient;
}

/** Regions whose names have the same length: every account-region's entry in a summary has the same size. */
const REGIONS = ['us-east-1', 'us-east-2', 'us-west-1', 'us-west-2', 'eu-west-1'] as const;

/** One account-region of an organisation's first full run: 3 APIs upserted and exported, one skipped. */
function orgAccountRegion(i: number): AccountRegionSummary {
  return {
    source: 'org',
    accountId: String(100_000_000_000 + Math.floor(i / REGIONS.length)),
    region: REGIONS[i % REGIONS.length]!,
    status: AccountRegionStatus.COMPLETE,
    counts: { ...emptyCounts(), discovered: 3, upserted: 3, skipped: 1, exported: 3 },
    apiCalls: { GetRestApis: 1, GetUsagePlans: 1, GetStages: 4, GetExport: 3 },
    throttles: 0,
    durationMs: 1234,
  };
}

/**
 * Account-regions of the synthetic runs: the fewest whose summary, listing every one of them as before
 * the bound, passes moto's item limit. One entry ({@link orgAccountRegion}) is 225 bytes by moto's count
 * (267 by DynamoDB's, 316 of JSON) and the rest of the item about 500–620: 1,798 entries pass 405,000,
 * 1,797 do not (each test checks both, for the item it writes). By DynamoDB's count 1,532 pass 400 KB.
 */
const ACCOUNT_REGIONS = 1_798;

/** The stored size moto counts for an item whose payload listed `n` entries of `entry` bytes, unbounded. */
function unboundedMotoSize(item: Record<string, AttributeValue>, entry: number, n: number): number {
  const { accountRegionCount: _count, accountRegionsByStatus: _byStatus, ...before } = item.payload!.M!;
  return motoItemSize({ ...item, payload: { M: { ...before, accountRegions: { L: [] } } } }) + n * entry;
}

/** The longest source name (the config allows 64 characters) and one of the longest region names. */
const LONG_SOURCE = 'organisation-sources-of-the-platform-team-in-every-business-unit';
const LONG_REGION = 'ap-southeast-3';

/**
 * An account-region that failed part-way at its largest in a summary: the longest source and region
 * names, every count and operation at six digits.
 */
function largestAccountRegion(i: number): AccountRegionSummary {
  const n = 123_456;
  return {
    source: LONG_SOURCE,
    accountId: String(100_000_000_000 + i),
    region: LONG_REGION,
    status: AccountRegionStatus.PARTIAL,
    counts: {
      discovered: n,
      upserted: n,
      unchanged: n,
      removed: n,
      plansRemoved: n,
      skipped: n,
      exported: n,
      exportRefused: n,
    },
    apiCalls: { GetRestApis: n, GetUsagePlans: n, GetStages: n, GetExport: n, GetRestApi: n },
    throttles: n,
    durationMs: 12_345_678,
  };
}

/** Its error at its largest: a 128-character stage name, a message cut at 500 characters. */
function largestError(ar: AccountRegionSummary) {
  return {
    source: ar.source,
    accountId: ar.accountId,
    region: ar.region,
    operation: `GetExport abcdefghij/${'s'.repeat(128)}`,
    code: 'AWS_ERROR',
    message: `${'m'.repeat(500)}…`,
  };
}

/** An account-region of an account without the role, as its unit ends (`unit.ts`). */
function withoutRoleAccountRegion(j: number): AccountRegionSummary {
  return {
    source: LONG_SOURCE,
    accountId: String(200_000_000_000 + j),
    region: LONG_REGION,
    status: AccountRegionStatus.FAILED,
    counts: emptyCounts(),
    apiCalls: { GetRestApis: 1, GetUsagePlans: 1 },
    throttles: 0,
    durationMs: 120,
  };
}

/**
 * Accounts without the role of the synthetic run below: the fewest whose summary, listing every one of
 * them as before the bound, passes moto's item limit when the rest of the summary is at its largest
 * (500 account-regions of {@link largestAccountRegion}, 100 errors of {@link largestError}). An id is 12
 * bytes by moto's count (13 by DynamoDB's, 15 of JSON) and the rest of the item 267,458: 11,462 pass
 * 405,000, 11,461 do not (the test checks both, for the item it writes). By DynamoDB's count the rest is
 * 268,529 and 10,852 pass 400 KB; with the rest of the summary empty, about 31,400 would. Bounded, the
 * item is 281,550 (DynamoDB's count).
 */
const WITHOUT_ROLE = 11_462;

/** A ledger item as moto stores it (raw attribute values: what the item-size helpers measure). */
async function storedItem(emu: Emulator, tableName: string, key: { pk: string; sk: string }) {
  const { Item: item } = await emu.dynamoDb().send(
    new GetItemCommand({
      TableName: tableName,
      Key: { pk: { S: key.pk }, sk: { S: key.sk } },
      ConsistentRead: true,
    }),
  );
  if (!item) throw new Error(`no item ${key.pk} / ${key.sk} in ${tableName}`);
  return item;
}

/**
 * A synthetic fanned-out run in moto's ledger: its record, and one ended UNIT# item per outcome as the
 * units' endUnit transactions leave them (written in batches: moto copies its tables for each
 * transaction). The run's counters are the caller's.
 */
async function writeEndedRun(
  f: FanOutHarness,
  run: { runId: string; sources: string[]; organizationAccounts: number },
  outcomes: readonly UnitOutcome[],
): Promise<void> {
  const startedAtMs = Date.now();
  await f.deps.ledger.createRun(
    {
      runId: run.runId,
      startedAt: new Date(startedAtMs).toISOString(),
      startedAtMs,
      deadlineAtMs: startedAtMs + 3_600_000,
      full: true,
      sources: run.sources,
      unitsTotal: outcomes.length,
      counts: emptyCounts(),
      organizationAccounts: run.organizationAccounts,
    },
    [],
  );
  const { table } = f.h;
  for (let i = 0; i < outcomes.length; i += 25) {
    await table.client.send(
      new BatchWriteCommand({
        RequestItems: {
          [table.tableName]: outcomes.slice(i, i + 25).map((outcome) => {
            const ar = outcome.summary;
            const spec = {
              key: unitKey(ar.source, ar.accountId!, ar.region),
              source: ar.source,
              accountId: ar.accountId!,
              region: ar.region,
              organization: true as const,
            };
            return {
              PutRequest: {
                Item: {
                  ...keys.runUnit(run.runId, spec.key),
                  kind: 'RUNUNIT',
                  spec,
                  cont: 0,
                  invocations: 1,
                  ended: true,
                  outcome,
                },
              },
            };
          }),
        },
      }),
    );
  }
}

describe('bounded items (400 KB)', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu?.stop();
  });

  it('records a run with 5,000 failed calls: the first errors in full, all counted by code', async () => {
    const h = await discoveryHarness(emu);
    const failing = failingApiGateway();
    const agent = parseAgentConfig({});
    const engine = new DiscoveryEngine(
      { ...h.deps, apiGateway: () => failing },
      {
        ...discoverySettingsOf(agent, emu.region),
        rateLimit: { ratePerSecond: 100_000, burst: 100_000 }, // no real API Gateway behind it
        retry: { maxAttempts: 1 },
      },
    );
    const { summary, events } = await engine.run();
    expect(summary.partial).toBe(true);
    expect(summary.errorCount).toBe(MANY);
    expect(summary.errorsByCode).toEqual({ AWS_ERROR: MANY });
    expect(summary.errors).toHaveLength(SUMMARY_ERRORS_MAX);
    expect(await h.runs.get(summary.runId)).toMatchObject({ runId: summary.runId, errorCount: MANY });
    expect(events.map((e) => e.event)).toEqual([EventType.DISCOVERY_COMPLETED]);
  }, 120_000);

  it('ends a fanned-out unit with 5,000 failed calls: its UNIT# item holds the first errors, the run counts all', async () => {
    const h = await discoveryHarness(emu);
    const failing = failingApiGateway();
    const f = await fanOutHarness(
      emu,
      { fanOut: { enabled: true } },
      {
        harness: { ...h, deps: { ...h.deps, apiGateway: () => failing } },
        // A unit reads `callConcurrency` candidates' stages a step: 100 keeps 5,000 to 50 steps.
        settings: { retry: { maxAttempts: 1 }, callConcurrency: 100 },
        rateLimit: { ratePerSecond: 100_000, burst: 100_000 }, // no real API Gateway behind it
      },
    );
    try {
      const started = await startFanOutRun(f.deps);
      expect(started.unitsTotal).toBe(1);
      const run = await f.completed(started.runId, 60_000);
      const [unit] = await f.deps.ledger.listUnits(started.runId);
      expect(unit?.outcome).toMatchObject({ errorCount: MANY, errorsByCode: { AWS_ERROR: MANY } });
      expect(unit?.outcome?.errors).toHaveLength(SUMMARY_ERRORS_MAX);
      const summary = await runSummary(f.deps, run);
      expect(summary).toMatchObject({
        partial: true,
        errorCount: MANY,
        errorsByCode: { AWS_ERROR: MANY },
        fanOut: { units: 1, unitsEnded: 1, unitStatus: { partial: 1 }, deadlineReached: false },
      });
      expect(summary.errors).toHaveLength(SUMMARY_ERRORS_MAX);
      expect(summary.errors[0]).toMatchObject({ operation: 'GetStages r000000000', code: 'AWS_ERROR' });
      const events = await h.outbox.listAfter(0);
      expect(events.map((e) => e.event)).toEqual([EventType.DISCOVERY_COMPLETED]);
      expect(events[0]!.payload).toMatchObject({ runId: started.runId, errorCount: MANY });
    } finally {
      await f.stop();
    }
  }, 120_000);

  it(`completes a fanned-out run of ${ACCOUNT_REGIONS} account-regions: discovery.completed lists ${SUMMARY_ACCOUNT_REGIONS_MAX}, counts all`, async () => {
    const N = ACCOUNT_REGIONS;
    const f = await fanOutHarness(emu, { fanOut: { enabled: true } });
    try {
      // A synthetic run in moto's ledger: its record and one ended unit per account-region, as the units'
      // endUnit transactions leave them (written in batches: moto copies its tables for each transaction).
      const runId = randomUUID();
      const entries = Array.from({ length: N }, (_, i) => orgAccountRegion(i));
      await writeEndedRun(
        f,
        { runId, sources: ['org'], organizationAccounts: Math.ceil(N / REGIONS.length) },
        entries.map((summary) => ({
          summary,
          errors: [],
          errorCount: 0,
          errorsByCode: {},
          events: 3,
          invocations: 1,
        })),
      );
      const { table } = f.h;
      await table.client.send(
        new UpdateCommand({
          TableName: table.tableName,
          Key: keys.run(runId),
          UpdateExpression:
            'SET unitsDone = :n, invocations = :n, events = :events, unitStatus = :status, counts = :counts, apiCalls = :calls',
          ExpressionAttributeValues: {
            ':n': N,
            ':events': 3 * N,
            ':status': { complete: N },
            ':counts': { ...emptyCounts(), discovered: 3 * N, upserted: 3 * N, skipped: N, exported: 3 * N },
            ':calls': { GetRestApis: N, GetUsagePlans: N, GetStages: 4 * N, GetExport: 3 * N },
          },
        }),
      );

      // The last unit's completion: before the bound, moto refused the event ("Item size has exceeded
      // the maximum allowed size") and the run stayed unanswered.
      const summary = await completeRun(f.deps, (await f.deps.ledger.getRun(runId))!, 'lastUnit');
      expect(summary).toMatchObject({
        runId,
        partial: false,
        accountRegionCount: N,
        accountRegionsByStatus: { complete: N },
        fanOut: { units: N, unitsEnded: N, unitStatus: { complete: N } },
      });
      expect(summary!.accountRegions).toHaveLength(SUMMARY_ACCOUNT_REGIONS_MAX);
      const events = await f.h.outbox.listAfter(0);
      expect(events.map((e) => e.event)).toEqual([EventType.DISCOVERY_COMPLETED]);
      expect(events[0]!.payload).toEqual(summary);
      expect(f.published.map((e) => e.seq)).toEqual([events[0]!.seq]);
      expect((await f.deps.ledger.getRun(runId))?.completedSeq).toBe(events[0]!.seq);

      // The event's item, read back from moto: under 400 KB. Listing all N entries (as before) would
      // pass moto's limit, N − 1 would not: N is the smallest run that failed.
      const item = await storedItem(emu, table.tableName, keys.event(events[0]!.seq));
      expect(itemSize(item)).toBeLessThan(ITEM_LIMIT);
      const entry = motoValueSize(item.payload!.M!.accountRegions!.L![0]!);
      expect(unboundedMotoSize(item, entry, N)).toBeGreaterThan(MOTO_ITEM_LIMIT);
      expect(unboundedMotoSize(item, entry, N - 1)).toBeLessThanOrEqual(MOTO_ITEM_LIMIT);
    } finally {
      await f.stop();
    }
  }, 120_000);

  it(`completes a fanned-out run with ${WITHOUT_ROLE} accounts without the role: discovery.completed lists ${SUMMARY_WITHOUT_ROLE_MAX}, counts all`, async () => {
    const K = WITHOUT_ROLE;
    const P = SUMMARY_ACCOUNT_REGIONS_MAX;
    const f = await fanOutHarness(emu, { fanOut: { enabled: true } });
    try {
      // A synthetic run in moto's ledger, one region per account: P account-regions that failed part-way
      // (sorted first: the summary lists them, and the first 100 of their errors), then K accounts
      // without the role (failed, AWS_ACCESS_DENIED). Their ended UNIT# items are written in batches.
      const runId = randomUUID();
      const partial = Array.from({ length: P }, (_, i) => largestAccountRegion(i));
      const denied = Array.from({ length: K }, (_, j) => withoutRoleAccountRegion(j));
      const deniedIds = denied.map((ar) => ar.accountId!);
      const outcomes = [
        ...partial.map((summary) => ({
          summary,
          errors: [largestError(summary)],
          errorCount: 1,
          errorsByCode: { AWS_ERROR: 1 },
          events: 0,
          invocations: 1,
        })),
        ...denied.map((summary) => ({
          summary,
          errors: [
            {
              source: summary.source,
              accountId: summary.accountId,
              region: summary.region,
              operation: 'GetRestApis',
              code: 'AWS_ACCESS_DENIED',
              message: 'User is not authorized to perform: sts:AssumeRole',
            },
          ],
          errorCount: 1,
          errorsByCode: { AWS_ACCESS_DENIED: 1 },
          events: 0,
          invocations: 1,
          withoutRole: true,
        })),
      ];
      await writeEndedRun(f, { runId, sources: [LONG_SOURCE], organizationAccounts: P + K }, outcomes);
      const { table } = f.h;
      // The run's counters, and the string set of the K accounts that the units' endUnit transactions
      // gathered in the RUN# record before the bound (the record of a run started before an upgrade has
      // it; the summary now takes the accounts from the UNIT# items).
      await table.client.send(
        new UpdateCommand({
          TableName: table.tableName,
          Key: keys.run(runId),
          UpdateExpression:
            'SET unitsDone = :n, invocations = :n, unitStatus = :status, #partial = :true, apiCalls = :calls ADD withoutRole :ids',
          ExpressionAttributeNames: { '#partial': 'partial' },
          ExpressionAttributeValues: {
            ':n': P + K,
            ':status': { partial: P, failed: K },
            ':true': true,
            ':calls': { GetRestApis: P + K, GetUsagePlans: P + K },
            ':ids': new Set(deniedIds),
          },
        }),
      );

      // The last unit's completion: before the bound, moto refused the event ("Item size has exceeded
      // the maximum allowed size") and the run stayed unanswered, on every retry.
      const summary = await completeRun(f.deps, (await f.deps.ledger.getRun(runId))!, 'lastUnit');
      expect(summary).toMatchObject({
        runId,
        partial: true,
        accountRegionCount: P + K,
        accountRegionsByStatus: { partial: P, failed: K },
        errorCount: P + K,
        errorsByCode: { AWS_ERROR: P, AWS_ACCESS_DENIED: K },
        organization: { accounts: P + K, withoutRoleCount: K },
      });
      expect(summary!.organization!.withoutRole).toEqual(deniedIds.slice(0, SUMMARY_WITHOUT_ROLE_MAX));
      expect(summary!.accountRegions).toEqual(partial);
      expect(summary!.errors).toHaveLength(SUMMARY_ERRORS_MAX);
      const events = await f.h.outbox.listAfter(0);
      expect(events.map((e) => e.event)).toEqual([EventType.DISCOVERY_COMPLETED]);
      expect(events[0]!.payload).toEqual(summary);
      expect((await f.deps.ledger.getRun(runId))?.completedSeq).toBe(events[0]!.seq);

      // The event's item, read back from moto: under 400 KB. Listing all K accounts (as before) would
      // pass moto's limit, K − 1 would not: K is the smallest such run that failed.
      const item = await storedItem(emu, table.tableName, keys.event(events[0]!.seq));
      expect(itemSize(item)).toBeLessThan(ITEM_LIMIT);
      const org = item.payload!.M!.organization!.M!;
      const id = motoValueSize(org.withoutRole!.L![0]!);
      expect(id).toBe(12);
      const { withoutRoleCount: _count, ...before } = org;
      const unbounded = (n: number) =>
        motoItemSize({
          ...item,
          payload: {
            M: { ...item.payload!.M!, organization: { M: { ...before, withoutRole: { L: [] } } } },
          },
        }) +
        n * id;
      expect(unbounded(K)).toBeGreaterThan(MOTO_ITEM_LIMIT);
      expect(unbounded(K - 1)).toBeLessThanOrEqual(MOTO_ITEM_LIMIT);
    } finally {
      await f.stop();
    }
  }, 300_000);

  it(`records a run of ${ACCOUNT_REGIONS} account-regions in one invocation: RUN# and discovery.completed list ${SUMMARY_ACCOUNT_REGIONS_MAX}`, async () => {
    const N = ACCOUNT_REGIONS;
    const h = await discoveryHarness(emu);
    const at = new Date();
    const summary = summarizeRun({
      runId: randomUUID(),
      startedAt: at,
      finishedAt: at,
      durationMs: 600_000,
      full: true,
      sources: ['org'],
      accountRegions: Array.from({ length: N }, (_, i) => ({ summary: orgAccountRegion(i), errors: [] })),
      events: 3 * N,
    });
    // What the engine does with the summary (engine.ts): the RUN# record, then discovery.completed.
    // Before the bound, moto refused the RUN# item ("Item size has exceeded the maximum allowed size")
    // and the run failed.
    await h.runs.put(summary);
    const appended = await h.outbox.append([{ event: EventType.DISCOVERY_COMPLETED, payload: summary }]);
    expect(summary).toMatchObject({ accountRegionCount: N, accountRegionsByStatus: { complete: N } });
    expect(summary.accountRegions).toHaveLength(SUMMARY_ACCOUNT_REGIONS_MAX);
    expect(await h.runs.get(summary.runId)).toEqual(summary);
    expect((await h.outbox.listAfter(0)).map((e) => e.payload)).toEqual([summary]);

    const read = (key: { pk: string; sk: string }) => storedItem(emu, h.table.tableName, key);
    const run = await read(keys.run(summary.runId));
    const event = await read(keys.event(appended[0]!.seq));
    expect(itemSize(run)).toBeLessThan(ITEM_LIMIT);
    expect(itemSize(event)).toBeLessThan(ITEM_LIMIT);
    // The RUN# item with all N entries would pass moto's limit, with N − 1 it would not.
    const entry = motoValueSize(event.payload!.M!.accountRegions!.L![0]!);
    const { accountRegionCount: _c, accountRegionsByStatus: _b, ...before } = run;
    const unbounded = (n: number) => motoItemSize({ ...before, accountRegions: { L: [] } }) + n * entry;
    expect(unbounded(N)).toBeGreaterThan(MOTO_ITEM_LIMIT);
    expect(unbounded(N - 1)).toBeLessThanOrEqual(MOTO_ITEM_LIMIT);
  }, 60_000);

  it(`lists every account-region up to ${SUMMARY_ACCOUNT_REGIONS_MAX}, past that those not complete first`, () => {
    const all = Array.from({ length: SUMMARY_ACCOUNT_REGIONS_MAX + 100 }, (_, i) => orgAccountRegion(i));
    const small = all.slice(0, SUMMARY_ACCOUNT_REGIONS_MAX);
    expect(boundAccountRegions(small)).toEqual({
      accountRegions: small,
      accountRegionCount: SUMMARY_ACCOUNT_REGIONS_MAX,
      accountRegionsByStatus: { complete: SUMMARY_ACCOUNT_REGIONS_MAX },
    });
    const late = [
      { ...all.at(-3)!, status: AccountRegionStatus.PARTIAL },
      { ...all.at(-2)!, status: AccountRegionStatus.FAILED },
      { ...all.at(-1)!, status: AccountRegionStatus.BUSY },
    ];
    const mixed = [...all.slice(0, -3), ...late];
    const bounded = boundAccountRegions(mixed);
    expect(bounded.accountRegionCount).toBe(mixed.length);
    expect(bounded.accountRegionsByStatus).toEqual({
      complete: mixed.length - 3,
      partial: 1,
      failed: 1,
      busy: 1,
    });
    expect(bounded.accountRegions).toEqual([...late, ...all.slice(0, SUMMARY_ACCOUNT_REGIONS_MAX - 3)]);
  });
});
