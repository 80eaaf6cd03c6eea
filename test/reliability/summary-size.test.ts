/**
 * Run summaries have a size bound (issue 15.5): a discovery run in which thousands of API Gateway calls
 * fail is still recorded. The real discovery handler runs two account-regions; in one of them every
 * `GetExport` is answered 500 by the fidelity proxy, after retries. Its `RUN#` item, read back from
 * moto's DynamoDB (which refuses items over the limit like DynamoDB), stays under 400 KB: the first
 * {@link SUMMARY_ERRORS_MAX} errors in full, all of them counted by code. The other account-region's
 * events reach the control plane, and the run's `discovery.completed` is appended.
 *
 * The failures are `GetExport`s of REST APIs with 10 stages each (API Gateway's default quota of
 * stages per REST API), not one `GetStages` per REST API: one failed call costs moto one `CreateStage`
 * to seed instead of a whole REST API (`CreateRestApi`, `PutRestApi`, `CreateDeployment`): about 4 ms
 * of moto's time per failed call instead of 15.
 */
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSeed, type SeedDescription, seed } from '../../emulator/seeder.js';
import {
  type DiscoveryError,
  type DiscoverySummary,
  EventType,
  parseAgentConfig,
  SUMMARY_ERRORS_MAX,
} from '../../layers/federation-core/src/index.js';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { ITEM_LIMIT, itemSize, valueSize } from '../support/item-size.js';
import {
  HARNESS_TABLE,
  type RawConnection,
  type RelayHarness,
  startRelayHarness,
} from '../support/relay-harness.js';
import { SecretsHygiene, scanAgent } from './hygiene.js';
import { ScenarioReport } from './report.js';

/** The account-region whose exports all fail; the emulator's own region stays healthy. */
const FAILING_REGION = 'eu-west-1';
/** API Gateway's default quota of stages per REST API. */
const STAGES = 10;
/**
 * REST APIs whose exports all fail: 2,500 failed calls, a little more than the old, unbounded summary
 * could hold. Measured: an error entry is 176 bytes by DynamoDB's sizing (166 by moto's, which
 * counts no list or map overhead and refuses an item over 405,000 of its bytes), the rest of the item
 * about 1,070 (960 by moto's): 2,322 errors passed 400 KB in DynamoDB, 2,435 moto's limit.
 */
const FAILING_APIS = 250;
const HEALTHY_APIS = 4;
/** Every failed call is tried this often: the proxy answers each attempt. */
const RETRY = { baseDelayMs: 1, maxDelayMs: 4, maxAttempts: 3 } as const;

/** REST APIs of `STAGES` deployed stages each, every stage on the API's usage plan. */
function failingSeed(): SeedDescription {
  const stages = Array.from({ length: STAGES }, (_, i) => `stage-${i}`);
  const apis = Array.from({ length: FAILING_APIS }, (_, i) => ({
    key: `broken-${String(i).padStart(3, '0')}`,
    name: `Broken ${i}`,
    stages,
    models: [],
    resources: [{ path: '/ping', methods: ['GET' as const] }],
  }));
  return {
    apis,
    usagePlans: apis.map((api) => ({
      key: `plan-${api.key}`,
      name: `Plan of ${api.name}`,
      stages: stages.map((stage) => ({ api: api.key, stage })),
    })),
  };
}

/** The console as it was when the file loaded: the hygiene capture swallows later console output. */
const print = console.info.bind(console);

const isOutboxEvent = (m: Record<string, unknown>) =>
  m.type === 'event' && typeof m.seq === 'number' && (m.seq as number) > 0;

describe('run summary size under thousands of failed calls', () => {
  const report = new ScenarioReport('summarySize');
  const hygiene = new SecretsHygiene();
  let emu: Emulator;
  let agent: RelayHarness;
  let client: RawConnection;

  beforeAll(async () => {
    hygiene.start();
    emu = await startEmulator();
    agent = await startRelayHarness(emu, {
      seed: generateSeed({ apis: HEALTHY_APIS, stages: ['prod'] }),
      discovery: {
        sources: parseAgentConfig({ sources: [{ name: 'main', regions: [emu.region, FAILING_REGION] }] })
          .sources,
        retry: RETRY,
        // The proxy answers the faults itself: no API Gateway rate to respect, only moto's pace.
        rateLimit: { ratePerSecond: 10_000, burst: 1_000 },
        callConcurrency: 16,
      },
    });
    hygiene.secret(agent.token);
    await seed(emu.apiGateway({ region: FAILING_REGION }), failingSeed(), { concurrency: 32 });
    client = await agent.connect();
    await client.waitFor((m) => m.event === 'hello');
  });
  afterAll(async () => {
    await client?.close();
    await agent?.stop();
    await emu?.stop();
    hygiene.stop();
    report.flush();
  });

  it(`records a run with ${FAILING_APIS * STAGES} failed GetExport calls: RUN# under 400 KB, every error counted, the healthy account-region published`, async () => {
    const since = await agent.relay.outbox.latestSeq();
    const faultSeed = report.seed('exports500', 1717);
    emu.proxy.resetStats();
    emu.proxy.resetCalls();
    emu.proxy.setFaults({
      seed: faultSeed,
      rates: { error500: 1 },
      operations: ['GetExport'],
      accountRegions: [`${emu.accountId}/${FAILING_REGION}`],
    });
    report.add({ operationsAttempted: 1 });
    let reply: Record<string, unknown>;
    try {
      reply = await client.command({ action: 'discover' }, 120_000);
    } finally {
      emu.proxy.setFaults(undefined);
      report.add({ faultsInjected: emu.proxy.stats.faults.total });
    }
    expect(reply).toMatchObject({ status: 'SUCCEEDED' });
    const summary = reply.payload as DiscoverySummary;

    // The failed calls as the proxy answered them: every attempt of every export of the failing region.
    const exports = emu.proxy.calls.list({
      service: 'apigateway',
      operation: 'GetExport',
      region: FAILING_REGION,
    });
    const failedPaths = new Set(exports.map((c) => c.path));
    const failedCalls = failedPaths.size;
    expect(failedCalls).toBe(FAILING_APIS * STAGES);
    expect(exports.every((c) => c.outcome === 'fault' && c.status === 500)).toBe(true);
    expect(exports).toHaveLength(failedCalls * RETRY.maxAttempts);

    // The RUN# item as DynamoDB holds it.
    const { Item: item } = await emu.dynamoDb().send(
      new GetItemCommand({
        TableName: HARNESS_TABLE,
        Key: { pk: { S: `RUN#${summary.runId}` }, sk: { S: 'RUN' } },
        ConsistentRead: true,
      }),
    );
    expect(item, 'the RUN# item is written').toBeDefined();
    const size = itemSize(item!);
    expect(size).toBeLessThan(ITEM_LIMIT);
    const stored = (await agent.discovery.runs.get(summary.runId))!;
    expect(stored).toMatchObject({
      runId: summary.runId,
      partial: true,
      errorCount: failedCalls,
      errorsByCode: { AWS_ERROR: failedCalls },
    });
    expect(stored.errors).toHaveLength(SUMMARY_ERRORS_MAX);
    for (const error of stored.errors) {
      expect(error).toEqual({
        source: 'main',
        accountId: emu.accountId,
        region: FAILING_REGION,
        operation: expect.stringMatching(/^GetExport [a-z0-9]+\/stage-\d$/),
        code: 'AWS_ERROR',
        message: `${error.operation}: AWS call failed (InternalFailure)`,
      } satisfies DiscoveryError);
      const [restApiId, stage] = error.operation!.slice('GetExport '.length).split('/');
      expect(failedPaths).toContain(`/restapis/${restApiId}/stages/${stage}/exports/oas30`);
    }
    expect(new Set(stored.errors.map((e) => e.operation)).size).toBe(SUMMARY_ERRORS_MAX);
    // The old summary listed every error: this item plus each one not listed would not have fit.
    const listed = item!.errors!.L!;
    const perError = listed.reduce((n, v) => n + 1 + valueSize(v), 0) / listed.length;
    const unbounded = Math.round(size + (failedCalls - listed.length) * perError);
    expect(unbounded).toBeGreaterThan(ITEM_LIMIT);
    print(
      `[reliability:summarySize] ${failedCalls} failed calls; RUN# item ${size} bytes; ${perError.toFixed(1)} bytes per error; unbounded ${unbounded} bytes`,
    );

    // One account-region complete, the failing one partial; nothing of the failing one federated.
    const byRegion = Object.fromEntries(summary.accountRegions.map((r) => [r.region, r]));
    expect(byRegion[emu.region]).toMatchObject({ status: 'complete', counts: { upserted: HEALTHY_APIS } });
    expect(byRegion[FAILING_REGION]).toMatchObject({ status: 'partial', counts: { upserted: 0 } });
    const catalog = await agent.discovery.catalog.listAll();
    expect(catalog.map((api) => api.source.region)).toEqual(Array(HEALTHY_APIS).fill(emu.region));

    // The run's events: the healthy account-region's upserts, then discovery.completed with the summary.
    const events = await agent.relay.outbox.listAfter(since, 10_000);
    expect(events.map((e) => e.event)).toEqual([
      ...Array(HEALTHY_APIS).fill(EventType.API_UPSERTED),
      EventType.DISCOVERY_COMPLETED,
    ]);
    expect(events.at(-1)!.payload).toMatchObject({ runId: summary.runId, errorCount: failedCalls });
    // ... and the control plane received each of them once, in order.
    const last = events.at(-1)!.seq;
    await client.waitFor((m) => m.type === 'event' && m.seq === last, 30_000);
    const received = client.messages.filter((m) => isOutboxEvent(m) && (m.seq as number) > since);
    expect(received.map((m) => m.seq)).toEqual(events.map((e) => e.seq));
    expect(received.at(-1)).toMatchObject({
      event: EventType.DISCOVERY_COMPLETED,
      payload: { runId: summary.runId, errorCount: failedCalls, errorsByCode: { AWS_ERROR: failedCalls } },
    });
    report.add({
      survived: 1,
      eventsProduced: events.length,
      eventsDelivered: new Set(received.map((m) => m.seq)).size,
    });
  }, 180_000);

  it('reported no handler failure and leaks no token into logs, ledger items or error messages', async () => {
    const leaks = await scanAgent(agent, hygiene, report);
    expect(agent.handlerErrors).toEqual([]);
    expect(hygiene.lines().length).toBeGreaterThan(0);
    expect(leaks).toEqual([]);
  });
});
