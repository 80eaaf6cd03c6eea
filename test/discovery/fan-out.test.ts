import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deleteApi, generateSeed, redeployStage, seed } from '../../emulator/seeder.js';
import {
  addCalls,
  addCounts,
  type DiscoveryCounts,
  discoveryLeaseName,
  EventType,
  emptyCounts,
  type FanOutSummary,
  type FederatedApi,
  keys,
  type OutboxEvent,
  runSummary,
  startFanOutRun,
  stepBudget,
} from '../../layers/federation-core/src/index.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import {
  accountCredentials,
  type FanOutHarness,
  fanOutHarness,
  seedOrganization,
} from './fan-out-harness.js';
import { discoveryHarness } from './harness.js';

const REGIONS = ['us-east-1', 'eu-west-1', 'eu-central-1', 'ap-southeast-2'];
const ROLE_NAME = 'apigw-federation-member';

/** A member account's API Gateway straight to moto (seeding). */
async function memberApiGateway(emu: Emulator, accountId: string, region: string) {
  return emu.apiGateway({ region, credentials: await accountCredentials(emu, accountId) });
}

/** One source per member account (us-east-1, through its member role), each seeded with one API. */
async function seededMemberSources(emu: Emulator, accounts: readonly string[], prefix: string) {
  for (const [i, accountId] of accounts.entries()) {
    await seed(
      await memberApiGateway(emu, accountId, 'us-east-1'),
      generateSeed({ apis: 1, prefix: `${prefix}${i}` }),
    );
  }
  return accounts.map((accountId, i) => ({
    name: `acct${i}`,
    roleArn: `arn:aws:iam::${accountId}:role/${ROLE_NAME}`,
    regions: ['us-east-1'],
  }));
}

/** Events without what differs between two runs of the same reads (sequence, time). */
function comparable(events: readonly OutboxEvent[]) {
  return events
    .filter((e) => e.event !== EventType.DISCOVERY_COMPLETED)
    .map((e) => ({ event: e.event, payload: withoutTimes(e.payload) }))
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}
function withoutTimes(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value), (key, v) => (key === 'updatedAt' ? undefined : v));
}
const catalogOf = (apis: FederatedApi[]) =>
  apis.map(withoutTimes).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

describe('fan-out: one unit per account-region, on SQS', () => {
  let emu: Emulator;
  let f: FanOutHarness | undefined;

  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu?.stop();
  });
  beforeEach(async () => {
    await emu.reset();
  });
  afterEach(async () => {
    await f?.stop();
    f = undefined;
  });

  it('an organisation scope of 13 accounts × 4 regions (52 account-regions, through sts:AssumeRole): one run, one answer, the sum of its units', async () => {
    const org = await seedOrganization(emu, { accounts: 13, withoutRole: 1, roleName: ROLE_NAME });
    // One API (two stages on a plan each) in two regions of every account with the role.
    await Promise.all(
      org.withRole.flatMap((accountId, i) =>
        REGIONS.slice(0, 2).map(async (region) =>
          seed(await memberApiGateway(emu, accountId, region), generateSeed({ apis: 1, prefix: `a${i}` })),
        ),
      ),
    );
    emu.proxy.requireRoles(true);
    f = await fanOutHarness(
      emu,
      {
        sources: [
          { name: 'org', organization: { ouIds: [org.ouId], roleName: ROLE_NAME, regions: REGIONS } },
        ],
        fanOut: { enabled: true, maxConcurrency: 8 },
      },
      { maxConcurrency: 8 },
    );
    const started = await startFanOutRun(f.deps);
    expect(started.unitsTotal).toBe(52);
    const run = await f.completed(started.runId, 90_000);
    const summary = await runSummary(f.deps, run);

    expect(summary.fanOut).toMatchObject({ units: 52, unitsEnded: 52, deadlineReached: false });
    expect(summary.fanOut.unitStatus).toEqual({ complete: 48, failed: 4 });
    expect(summary.organization).toEqual({
      accounts: 13,
      withoutRole: org.withoutRole,
      withoutRoleCount: org.withoutRole.length,
    });
    // The accounts without the role are in their UNIT# items only: the RUN# record gathers none.
    const { Item: record } = await f.h.table.client.send(
      new GetCommand({ TableName: f.h.table.tableName, Key: keys.run(started.runId), ConsistentRead: true }),
    );
    expect(record).toBeDefined();
    expect(record).not.toHaveProperty('withoutRole');
    expect(summary.accountRegions).toHaveLength(52);
    const denied = summary.errors.filter((e) => e.code === 'AWS_ACCESS_DENIED');
    expect(new Set(denied.map((e) => `${e.accountId}/${e.region}`)).size).toBe(4);
    expect(new Set(denied.map((e) => e.accountId))).toEqual(new Set(org.withoutRole));
    expect(summary.partial).toBe(true); // the account without the role failed
    // The aggregated counters are the sum of the units.
    const counts: DiscoveryCounts = emptyCounts();
    const apiCalls: Record<string, number> = {};
    for (const unit of summary.accountRegions) {
      addCounts(counts, unit.counts);
      addCalls(apiCalls, unit.apiCalls);
    }
    expect(summary.counts).toEqual(counts);
    expect(summary.apiCalls).toEqual(apiCalls);
    expect(summary.counts).toMatchObject({ upserted: 48, discovered: 48, exported: 48 });
    // What reached API Gateway: the calls of the units whose role could be assumed.
    const reached: Record<string, number> = {};
    for (const unit of summary.accountRegions.filter((u) => u.status === 'complete'))
      addCalls(reached, unit.apiCalls);
    expect(emu.proxy.calls.byOperation({ service: 'apigateway' })).toEqual(reached);
    expect(summary.fanOut.invocations).toBe(52);
    // One discovery.completed, after every api.upserted, with the run's summary.
    const events = await f.h.outbox.listAfter(0);
    expect(events.filter((e) => e.event === EventType.API_UPSERTED)).toHaveLength(48);
    const completed = events.filter((e) => e.event === EventType.DISCOVERY_COMPLETED);
    expect(completed).toHaveLength(1);
    expect(completed[0]!.seq).toBe(events.at(-1)!.seq);
    expect((completed[0]!.payload as FanOutSummary).counts).toEqual(summary.counts);
    expect(f.published.map((e) => e.seq).sort((a, b) => a - b)).toEqual(events.map((e) => e.seq));
    expect(await f.h.catalog.listAll()).toHaveLength(48);
    expect(f.poller.peakConcurrency).toBeLessThanOrEqual(8);
    // Each account with the role assumed once per container (the client factory caches credentials).
    expect(emu.proxy.calls.countOf('AssumeRole')).toBeGreaterThanOrEqual(13);
  }, 120_000);

  it('a unit that keeps failing is retried, then dead-lettered, and the run completes without it', async () => {
    const sources = await seededMemberSources(emu, ['111111111111', '222222222222', '333333333333'], 'f');
    f = await fanOutHarness(emu, { sources, fanOut: { enabled: true, maxReceiveCount: 2 } });
    emu.proxy.setFaults({
      seed: 1,
      rates: { error503: 1 },
      operations: ['GetRestApis'],
      accountRegions: ['222222222222/us-east-1'],
    });
    const started = await startFanOutRun(f.deps);
    const run = await f.completed(started.runId);
    const summary = await runSummary(f.deps, run);
    expect(summary.fanOut.unitStatus).toEqual({ complete: 2, failed: 1 });
    expect(summary.partial).toBe(true);
    const failed = summary.accountRegions.find((u) => u.accountId === '222222222222')!;
    expect(failed.status).toBe('failed');
    expect(summary.errors.map((e) => e.code)).toEqual(expect.arrayContaining(['AWS_ERROR', 'DEAD_LETTERED']));
    // Two deliveries (maxReceiveCount), each with the reader's own retries.
    expect(emu.proxy.calls.byAccountRegion({ operation: 'GetRestApis' })['222222222222/us-east-1']).toBe(
      2 * 4,
    );
    // The message is in the dead-letter queue (moved by SQS on the receive after the last delivery).
    let dead: unknown[] = [];
    for (let i = 0; i < 50 && dead.length === 0; i++) {
      const out = await f.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: f.queues.deadLetterQueueUrl, MaxNumberOfMessages: 10 }),
      );
      dead = out.Messages ?? [];
      if (dead.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(dead).toHaveLength(1);
    const events = await f.h.outbox.listAfter(0);
    expect(events.filter((e) => e.event === EventType.DISCOVERY_COMPLETED)).toHaveLength(1);
    expect(await f.h.catalog.listAll()).toHaveLength(4); // two stages each of the two other accounts
  });

  it('a unit cut after every step resumes to the catalog and events of an uninterrupted run', async () => {
    const gw = emu.apiGateway();
    const seeded = await seed(gw, generateSeed({ apis: 5, withoutPlan: 1, prefix: 'cut' }));
    const config = { fanOut: { enabled: true } } as const;
    const settings = { pageLimit: 2, callConcurrency: 2 };
    const cutLedger = await discoveryHarness(emu);
    const wholeLedger = await discoveryHarness(emu);
    const cut = await fanOutHarness(emu, config, {
      settings,
      budget: () => stepBudget(1),
      harness: cutLedger,
    });
    const whole = await fanOutHarness(emu, config, { settings, harness: wholeLedger });
    try {
      const runBoth = async () => {
        const seqCut = await cut.h.outbox.latestSeq();
        const seqWhole = await whole.h.outbox.latestSeq();
        const a = await startFanOutRun(cut.deps);
        const cutRun = await cut.completed(a.runId);
        const b = await startFanOutRun(whole.deps);
        const wholeRun = await whole.completed(b.runId);
        expect(comparable(await cut.h.outbox.listAfter(seqCut))).toEqual(
          comparable(await whole.h.outbox.listAfter(seqWhole)),
        );
        expect(catalogOf(await cut.h.catalog.listAll())).toEqual(catalogOf(await whole.h.catalog.listAll()));
        expect(cutRun.counts).toEqual(wholeRun.counts);
        expect(cutRun.apiCalls).toEqual(wholeRun.apiCalls); // nothing read twice
        return { cutRun, wholeRun };
      };
      const first = await runBoth();
      expect(first.cutRun.counts).toMatchObject({ upserted: 8, skipped: 1, exported: 8 });
      expect(first.cutRun.invocations).toBeGreaterThan(8); // 3 pages, stages and exports in chunks of 2, commit
      expect(first.wholeRun.invocations).toBe(1);
      // Changes: a redeploy, a deleted API; the cut run sees them as the whole run does.
      await redeployStage(gw, seeded.apis['cut-0']!.restApiId, 'prod');
      await deleteApi(gw, seeded.apis['cut-1']!.restApiId);
      const second = await runBoth();
      expect(second.cutRun.counts).toMatchObject({ upserted: 1, removed: 2, exported: 1 });
    } finally {
      await cut.stop();
      await whole.stop();
    }
  });

  it('two overlapping runs never publish one change twice: the account-region lease spans a unit’s invocations', async () => {
    const gw = emu.apiGateway();
    await seed(gw, generateSeed({ apis: 3, prefix: 'home' }));
    const other = await memberApiGateway(emu, '444444444444', 'us-east-1');
    await seed(other, generateSeed({ apis: 3, prefix: 'member' }));
    const sources = [
      { name: 'home', regions: ['us-east-1'] },
      { name: 'member', roleArn: `arn:aws:iam::444444444444:role/${ROLE_NAME}`, regions: ['us-east-1'] },
    ];
    f = await fanOutHarness(
      emu,
      { sources, fanOut: { enabled: true } },
      { budget: () => stepBudget(1), settings: { callConcurrency: 1 }, maxConcurrency: 4 },
    );
    const [a, b] = await Promise.all([startFanOutRun(f.deps), startFanOutRun(f.deps)]);
    const [runA, runB] = [await f.completed(a!.runId), await f.completed(b!.runId)];
    const upserted = (await f.h.outbox.listAfter(0)).filter((e) => e.event === EventType.API_UPSERTED);
    const ids = upserted.map((e) => (e.payload as { id: string }).id);
    expect(ids).toHaveLength(12);
    expect(new Set(ids).size).toBe(12);
    // Each account-region was discovered by one run; the other found it busy or already done.
    for (const name of [
      discoveryLeaseName('123456789012', 'us-east-1'),
      discoveryLeaseName('444444444444', 'us-east-1'),
    ]) {
      expect(await f.h.leases.get(name)).toBeUndefined(); // released at the end
    }
    expect(runA.counts.upserted + runB.counts.upserted).toBe(12);
    const completed = (await f.h.outbox.listAfter(0)).filter(
      (e) => e.event === EventType.DISCOVERY_COMPLETED,
    );
    expect(completed.length).toBe([runA, runB].filter((r) => r.events > 0 || r.partial).length);
  });
  it('publishes discovery.completed once when the invocation that completed the run dies before appending it', async () => {
    const sources = await seededMemberSources(emu, ['111111111111', '222222222222'], 'c');
    f = await fanOutHarness(emu, { sources, fanOut: { enabled: true } });
    // The first append of the run's discovery.completed dies (after the run record says COMPLETED):
    // the invocation fails, SQS delivers its message again, and that delivery finishes the answer.
    const outbox = f.deps.outbox;
    let died = 0;
    (f.deps as { outbox: typeof outbox }).outbox = {
      append: (events, options) => {
        if (events.some((e) => e.event === EventType.DISCOVERY_COMPLETED) && died++ === 0) {
          return Promise.reject(new Error('crash before discovery.completed'));
        }
        return outbox.append(events, options);
      },
      appendedOnceAt: (id) => outbox.appendedOnceAt(id),
    };
    const started = await startFanOutRun(f.deps);
    const run = await f.completed(started.runId);
    expect(died).toBeGreaterThan(0);
    const completed = (await f.h.outbox.listAfter(0)).filter(
      (e) => e.event === EventType.DISCOVERY_COMPLETED,
    );
    expect(completed).toHaveLength(1);
    expect(run.completedSeq).toBe(completed[0]!.seq);
    expect(f.published.filter((e) => e.event === EventType.DISCOVERY_COMPLETED)).toHaveLength(1);
  });

  it('completes a run as partial when its deadline passes before a unit ends; the unit’s late end changes not the answer', async () => {
    const sources = await seededMemberSources(emu, ['111111111111', '222222222222'], 'd');
    f = await fanOutHarness(emu, { sources, fanOut: { enabled: true } }, { settings: { deadlineMs: 1_000 } });
    // The second account-region's listing takes 4 s: the run's deadline (1 s) passes first.
    emu.proxy.setFaults({
      seed: 2,
      rates: {},
      latencyMs: 4_000,
      operations: ['GetRestApis'],
      accountRegions: ['222222222222/us-east-1'],
    });
    const started = await startFanOutRun(f.deps);
    const run = await f.completed(started.runId, 30_000);
    const summary = await runSummary(f.deps, run);
    expect(summary.partial).toBe(true);
    expect(summary.fanOut.deadlineReached).toBe(true);
    expect(summary.fanOut.unitStatus).toMatchObject({ complete: 1 });
    expect(summary.errors.map((e) => e.code)).toContain('DEADLINE');
    expect(summary.accountRegions.find((u) => u.accountId === '222222222222')?.status).toBe('failed');
    // The slow unit ends later: its changes are published, the run's answer stays the one given.
    const late = (u: { accountId?: string }) => u.accountId === '222222222222';
    let ended = false;
    for (let i = 0; i < 100 && !ended; i++) {
      ended = (await f.deps.ledger.listUnits(started.runId)).some((u) => late(u.spec) && u.outcome);
      if (!ended) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ended, 'the slow unit ended after the deadline').toBe(true);
    emu.proxy.setFaults(undefined);
    const after = await f.deps.ledger.getRun(started.runId);
    expect({ status: after?.status, completedSeq: after?.completedSeq }).toEqual({
      status: run.status,
      completedSeq: run.completedSeq,
    });
    const completed = (await f.h.outbox.listAfter(0)).filter(
      (e) => e.event === EventType.DISCOVERY_COMPLETED,
    );
    expect(completed).toHaveLength(1);
  });
});
