/**
 * Discovery under injected faults and under API Gateway's rate limit, through the real discovery
 * handler (its core wiring, as the function module builds it). The end state is compared with a
 * fault-free run on the same API Gateway state: same catalog entries, same fingerprints, same
 * definitions — or a run that says it is partial and has removed nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSeed, seed } from '../../emulator/seeder.js';
import { createDiscoveryHandler } from '../../functions/discovery/handler.js';
import {
  AwsClientFactory,
  createDiscoveryWiring,
  createLedgerTable,
  createLogger,
  type DiscoverySettings,
  type DiscoverySummary,
  type DiscoveryWiring,
  type FederatedApi,
  type OutboxEvent,
  parseAgentConfig,
} from '../../layers/federation-core/src/index.js';
import { type Emulator, startEmulator, TEST_CREDENTIALS } from '../support/emulator.js';
import { THIRTY_PERCENT_FAULTS } from './faults.js';
import { SecretsHygiene } from './hygiene.js';
import { ScenarioReport } from './report.js';

const FAULT_RATES = THIRTY_PERCENT_FAULTS;
/** Retry budget of the faulty runs: 8 attempts per call, short waits (Retry-After cut to 50 ms). */
const RETRY = { baseDelayMs: 5, maxDelayMs: 40, maxAttempts: 8, maxRetryAfterMs: 50 } as const;
const APIS = 20;
/**
 * Client-side bucket of the fault runs. Injected 429s make the adaptive limiter halve its rate (down to
 * a tenth), so at the default 10/s a run under 12 % injected throttles crawls at 1-2 calls/s: the fault
 * runs get a fast bucket, and the rate itself is proven against the proxy's throttle below.
 */
const FAST = { ratePerSecond: 400, burst: 200 } as const;

interface DiscoveryFunction {
  readonly wiring: DiscoveryWiring;
  readonly invoke: (event?: unknown) => Promise<DiscoverySummary>;
}

/** Comparable view of a catalog: id → fingerprint, definition hash and plans (not timestamps). */
function catalogView(apis: readonly FederatedApi[]) {
  return Object.fromEntries(
    [...apis]
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((a) => [
        a.id,
        {
          fingerprint: a.fingerprint,
          sha256: a.definition?.sha256,
          plans: a.plans.map((p) => p.usagePlanId).sort(),
        },
      ]),
  );
}

function removals(events: readonly OutboxEvent[]): OutboxEvent[] {
  return events.filter((e) => e.event === 'api.removed' || e.event === 'plan.removed');
}

describe('discovery under faults and throttling', () => {
  const report = new ScenarioReport('discovery');
  const hygiene = new SecretsHygiene();
  let emu: Emulator;
  let factory: AwsClientFactory;
  let tables = 0;
  let reference: ReturnType<typeof catalogView>;

  /** The discovery function (real handler and wiring) on a fresh ledger table. */
  const discoveryFunction = async (settings: Partial<DiscoverySettings> = {}): Promise<DiscoveryFunction> => {
    const tableName = `discovery-${++tables}`;
    await createLedgerTable(emu.dynamoDb(), tableName);
    const wiring = createDiscoveryWiring({
      config: {
        agent: parseAgentConfig({ tableName }),
        runtime: { region: emu.region, endpoint: emu.endpoint, version: 'test' },
      },
      clients: factory,
      logger: createLogger('discovery'),
      settings: { retry: RETRY, ...settings },
    });
    const handler = createDiscoveryHandler({ ...wiring, logger: createLogger('discovery') });
    return {
      wiring,
      invoke: async (event = {}) => {
        try {
          return await handler(event, { getRemainingTimeInMillis: () => 300_000 });
        } catch (error) {
          hygiene.error(error);
          throw error;
        }
      },
    };
  };

  const outboxOf = (fn: DiscoveryFunction) => fn.wiring.outbox.listAfter(0, 10_000);

  beforeAll(async () => {
    hygiene.start();
    emu = await startEmulator();
    factory = new AwsClientFactory({
      region: emu.region,
      endpoint: emu.endpoint,
      credentials: { ...TEST_CREDENTIALS },
    });
    // 20 REST APIs × 2 stages, each stage on its own usage plan: 40 federated APIs, about 60 GET calls a run.
    await seed(emu.apiGateway(), generateSeed({ apis: APIS, stages: ['dev', 'prod'] }), { concurrency: 8 });
    const clean = await discoveryFunction({ rateLimit: FAST });
    const summary = await clean.invoke();
    expect(summary.partial).toBe(false);
    reference = catalogView(await clean.wiring.catalog.listAll());
    expect(Object.keys(reference)).toHaveLength(APIS * 2);
  });
  afterAll(async () => {
    await emu?.stop();
    hygiene.stop();
    report.flush();
  });

  for (const faultSeed of [1101, 2202]) {
    it(`converges to exactly the fault-free catalog under 30% faults (seed ${faultSeed}), or says partial and removes nothing`, async () => {
      report.seed(`faults#${faultSeed}`, faultSeed);
      const fn = await discoveryFunction({ rateLimit: FAST });
      emu.proxy.resetStats();
      emu.proxy.setFaults({ seed: faultSeed, rates: FAULT_RATES });
      report.add({ operationsAttempted: 1 });
      let summary: DiscoverySummary;
      try {
        summary = await fn.invoke();
      } finally {
        emu.proxy.setFaults(undefined);
        report.add({ faultsInjected: emu.proxy.stats.faults.total });
      }
      expect(emu.proxy.stats.faults.total).toBeGreaterThan(5);
      const catalog = catalogView(await fn.wiring.catalog.listAll());
      const events = await outboxOf(fn);
      expect(removals(events)).toEqual([]);
      if (!summary.partial) {
        expect(catalog).toEqual(reference);
        expect(summary.counts).toMatchObject({ discovered: APIS * 2, upserted: APIS * 2, removed: 0 });
        expect(events.filter((e) => e.event === 'api.upserted')).toHaveLength(APIS * 2);
      } else {
        // Partial: what it has is right, and it says what it could not read.
        for (const [id, entry] of Object.entries(catalog)) expect(entry).toEqual(reference[id]);
        expect(summary.errors.length).toBeGreaterThan(0);
      }
      // Faults gone: the next run completes to exactly the reference, with nothing removed.
      const again = await fn.invoke();
      expect(again.partial).toBe(false);
      expect(catalogView(await fn.wiring.catalog.listAll())).toEqual(reference);
      expect(removals(await outboxOf(fn))).toEqual([]);
      report.add({ survived: 1 });
    });
  }

  it('removes nothing from a full catalog when a run under 30% faults has no retry budget (partial)', async () => {
    const faultSeed = report.seed('noBudget', 4404);
    const fn = await discoveryFunction({ rateLimit: FAST, retry: { ...RETRY, maxAttempts: 1 } });
    expect((await fn.invoke()).partial).toBe(false);
    const before = await outboxOf(fn);
    emu.proxy.resetStats();
    emu.proxy.setFaults({ seed: faultSeed, rates: FAULT_RATES });
    report.add({ operationsAttempted: 1 });
    let summary: DiscoverySummary;
    try {
      summary = await fn.invoke();
    } finally {
      emu.proxy.setFaults(undefined);
      report.add({ faultsInjected: emu.proxy.stats.faults.total });
    }
    expect(summary.partial).toBe(true);
    expect(summary.counts.removed).toBe(0);
    expect(summary.counts.plansRemoved).toBe(0);
    expect(catalogView(await fn.wiring.catalog.listAll())).toEqual(reference);
    const after = await outboxOf(fn);
    // Only `discovery.completed` (partial) was appended: no upsert, no removal.
    expect(after.slice(before.length).map((e) => e.event)).toEqual(['discovery.completed']);
    report.add({ survived: 1 });
  });

  it('never exceeds 10 req/s sustained (burst 40) against a 10/40 token-bucket API Gateway', async () => {
    const fn = await discoveryFunction({ rateLimit: { ratePerSecond: 10, burst: 40 } });
    emu.proxy.resetStats();
    emu.proxy.resetCalls();
    emu.proxy.setThrottle({ ratePerSecond: 10, burst: 40 });
    report.add({ operationsAttempted: 1 });
    let summary: DiscoverySummary;
    try {
      summary = await fn.invoke({ full: true });
    } finally {
      emu.proxy.setThrottle(undefined);
    }
    expect(summary.partial).toBe(false);
    expect(catalogView(await fn.wiring.catalog.listAll())).toEqual(reference);
    const times = emu.proxy.calls.list({ service: 'apigateway' }).map((c) => c.time);
    expect(times.length).toBeGreaterThan(50);
    // Every window [t_i, t_j] holds at most burst + rate × (t_j − t_i) requests (+1 for ms rounding).
    let worst = 0;
    for (let i = 0; i < times.length; i++) {
      for (let j = i; j < times.length; j++) {
        const allowed = 40 + (10 * (times[j]! - times[i]!)) / 1000 + 1;
        worst = Math.max(worst, j - i + 1 - allowed);
      }
    }
    expect(worst).toBeLessThanOrEqual(0);
    // Over the whole run (longer than the burst), the average stays at the rate.
    const seconds = (times[times.length - 1]! - times[0]!) / 1000;
    expect((times.length - 40) / seconds).toBeLessThanOrEqual(10.5);
    expect(emu.proxy.stats.throttle.sent429).toBe(0);
    report.add({ survived: 1 });
  });

  it('leaks no secret into logs, ledger items or error messages', async () => {
    const leaks = await hygiene.leaks();
    report.add({ logLinesScanned: hygiene.lines().length, secretsLeaked: leaks.length });
    expect(hygiene.lines().length).toBeGreaterThan(0);
    expect(leaks).toEqual([]);
  });
});
