/**
 * Organisation scenario (`--only org`, or in the full run unless `--skip org`): an AWS Organizations scope
 * of 50 accounts × 4 regions = 200 account-regions, each with a few APIs, discovered by one fanned-out run
 * at API Gateway's rate limit (the proxy's bucket per account-region: 10 requests/s, burst 40; 20 ms added
 * latency). The agent is the real wiring (`createComposition` with a fan-out queue in moto), its units
 * delivered by the local runtime's poller as Lambda's event source mapping would, `maxConcurrency` at once.
 *
 * Reported: the run's wall time against the ideal (the slowest account-region at the rate limit, alone),
 * invocations, and the cost model of 100 accounts × 5 regions × 200 APIs on a 15-minute schedule.
 */
import { randomUUID } from 'node:crypto';
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { type MotoServer, startMoto } from '../emulator/moto.js';
import { memberCredentials, seedOrganization } from '../emulator/organizations.js';
import { type FidelityProxy, startFidelityProxy } from '../emulator/proxy.js';
import { generateSeed, seed } from '../emulator/seeder.js';
import {
  AwsClientFactory,
  createComposition,
  createLedgerTable,
  type FanOutSummary,
  parseAgentConfig,
  RunStatus,
  runDiscoveryInvocation,
  runSummary,
  startFanOutRun,
} from '../layers/federation-core/src/index.js';
import { createFanOutQueues, FanOutPoller } from '../local/fan-out-poller.js';
import { HOURS_PER_MONTH, PRICES, runsPerMonth } from './lib/cost.js';
import { type Figure, figure } from './lib/report.js';
import { median, round } from './lib/stats.js';

export const ORG_ACCOUNTS = Number(process.env.BENCH_ORG_ACCOUNTS ?? 50);
export const ORG_REGIONS = ['us-east-1', 'eu-west-1', 'eu-central-1', 'ap-southeast-2'] as const;
export const ORG_APIS_PER_ACCOUNT_REGION = 3;
export const ORG_MAX_CONCURRENCY = 50;
const THROTTLE = { ratePerSecond: 10, burst: 40 } as const;
const LATENCY_MS = 20;
const ROLE_NAME = 'apigw-federation-member';
const CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' } as const;
/** The discovery function's memory (infra/constructs/discovery.ts). */
const DISCOVERY_MEMORY_MB = 512;

/** SQS standard queue requests (not in `PRICES`: only fan-out uses SQS). */
const SQS_REQUEST = {
  value: 0.4 / 1_000_000,
  unit: 'USD per SQS standard request, 64 KB chunk ($0.40 per 1M after the free tier)',
  source: 'https://aws.amazon.com/sqs/pricing/',
};

/** The cost model's organisation: 100 accounts × 5 regions × 200 APIs, a 15-minute schedule. */
export const COST_MODEL = {
  accounts: 100,
  regions: 5,
  apisPerAccountRegion: 200,
  scheduleMinutes: 15,
  /** Share of APIs on a usage plan (GetStages is paid for those only), as in the discovery scenarios. */
  withPlanShare: 0.9,
  /** The agent's default share of the management API: 5 requests/s, burst 20. */
  rate: { ratePerSecond: 5, burst: 20 },
} as const;

export interface OrgCostInput {
  /** Per-unit time beyond waiting for the bucket (ledger, lease, commit), measured. */
  readonly unitOverheadMs: number;
  /** Default the cost model's 15 minutes; 360 is the reconciliation schedule of change events. */
  readonly scheduleMinutes?: number;
}

/**
 * Monthly cost of fanned-out incremental runs (nothing changed: no exports) of the cost model's
 * organisation. Per account-region: `GetRestApis` and `GetUsagePlans` (one page each), one `GetStages` per
 * API on a plan; an invocation lasts the calls beyond the burst at the rate, plus the measured overhead.
 * DynamoDB per unit: its record (1 WRU), claim (1), lease acquire and release (2), the end transaction
 * (2 items × 2), the account-region's catalog (eventually consistent query of ~1.5 KB items) and three
 * small consistent reads; per run the run record and the completion's unit listing (~0.5 KB a unit).
 * SQS per unit: send, receive, delete (the coordinator sends in batches of 10).
 */
export function organizationMonthlyCost(input: OrgCostInput) {
  const m = COST_MODEL;
  const units = m.accounts * m.regions;
  const calls = 2 + Math.round(m.apisPerAccountRegion * m.withPlanShare);
  const waitMs = (Math.max(0, calls - m.rate.burst) / m.rate.ratePerSecond) * 1000;
  const unitMs = waitMs + input.unitOverheadMs;
  const runs = runsPerMonth(input.scheduleMinutes ?? m.scheduleMinutes);
  const gbSeconds = units * (unitMs / 1000) * (DISCOVERY_MEMORY_MB / 1024) + (2 * DISCOVERY_MEMORY_MB) / 1024;
  const lambdaCompute = runs * gbSeconds * PRICES.lambdaArmGbSecond.value;
  const invocations = units + 1; // the units and the coordinator (the deadline message: one more)
  const lambdaRequests = runs * (invocations + 1) * PRICES.lambdaRequest.value;
  const wru = units * 8 + 3;
  const catalogRru = Math.ceil((m.apisPerAccountRegion * 0.9 * 1.5) / 4) * 0.5;
  const rru = units * (catalogRru + 3) + Math.ceil((units * 0.5) / 4) + 2;
  const dynamoDb =
    runs * (wru * PRICES.dynamoWriteRequestUnit.value + rru * PRICES.dynamoReadRequestUnit.value);
  const sqsRequests = units / 10 + 1 + units * 3 + 3;
  const sqs = runs * sqsRequests * SQS_REQUEST.value;
  const total = lambdaCompute + lambdaRequests + dynamoDb + sqs;
  return {
    units,
    callsPerUnit: calls,
    unitMs: Math.round(unitMs),
    runWallMsAtConcurrency: (concurrency: number) => Math.ceil(units / concurrency) * unitMs,
    perRun: { invocations, gbSeconds: round(gbSeconds, 1), wru, rru: round(rru, 1), sqsRequests },
    monthly: {
      lambdaCompute: round(lambdaCompute, 2),
      lambdaRequests: round(lambdaRequests, 2),
      dynamoDb: round(dynamoDb, 2),
      sqs: round(sqs, 2),
      total: round(total, 2),
    },
    hoursPerMonth: HOURS_PER_MONTH,
    sqsPrice: SQS_REQUEST,
  };
}

export async function benchOrganization(
  progress: (message: string) => void,
): Promise<{ figures: Figure[]; details: Record<string, unknown> }> {
  const moto: MotoServer = await startMoto();
  let proxy: FidelityProxy | undefined;
  let poller: FanOutPoller | undefined;
  try {
    proxy = await startFidelityProxy({ target: moto.endpoint });
    const direct = { endpoint: moto.endpoint, region: 'us-east-1', credentials: { ...CREDENTIALS } };
    progress(`organisation: ${ORG_ACCOUNTS} accounts, the member role in each`);
    const org = await seedOrganization(moto.endpoint, {
      accounts: ORG_ACCOUNTS,
      withoutRole: 0,
      roleName: ROLE_NAME,
    });
    const accountRegions = org.accountIds.flatMap((accountId) =>
      ORG_REGIONS.map((region) => ({ accountId, region })),
    );
    progress(
      `seeding ${accountRegions.length} account-regions × ${ORG_APIS_PER_ACCOUNT_REGION} APIs straight into moto`,
    );
    const credentials = new Map<string, Awaited<ReturnType<typeof memberCredentials>>>();
    for (const accountId of org.accountIds)
      credentials.set(accountId, await memberCredentials(moto.endpoint, accountId));
    const queue = [...accountRegions.entries()];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          const [i, ar] = next;
          const client = new APIGatewayClient({
            ...direct,
            region: ar.region,
            credentials: credentials.get(ar.accountId)!,
            maxAttempts: 5,
          });
          await seed(
            client,
            generateSeed({ apis: ORG_APIS_PER_ACCOUNT_REGION, stages: ['prod'], prefix: `o${i}` }),
          );
          client.destroy();
        }
      }),
    );

    const tableName = `bench-org-${randomUUID().slice(0, 8)}`;
    await createLedgerTable(new DynamoDBClient(direct), tableName);
    const sqs = new SQSClient({ ...direct, maxAttempts: 5 });
    const queues = await createFanOutQueues(sqs, {
      name: `bench-org-${randomUUID().slice(0, 8)}`,
      maxReceiveCount: 3,
    });
    const agent = parseAgentConfig({
      agentId: 'bench-org',
      tableName,
      sources: [
        { name: 'org', organization: { ouIds: [org.ouId], roleName: ROLE_NAME, regions: [...ORG_REGIONS] } },
      ],
      rateLimit: { ...THROTTLE },
      fanOut: { enabled: true, maxConcurrency: ORG_MAX_CONCURRENCY },
    });
    const clients = new AwsClientFactory({
      region: 'us-east-1',
      endpoint: proxy.endpoint,
      credentials: { ...CREDENTIALS },
    });
    const root = createComposition({
      config: {
        agent,
        runtime: {
          region: 'us-east-1',
          endpoint: proxy.endpoint,
          version: 'bench',
          fanOutQueueUrl: queues.queueUrl,
        },
      },
      clients,
    });
    const wiring = root.discovery();
    const fanOut = wiring.fanOut!;
    poller = new FanOutPoller({
      sqs,
      queueUrl: queues.queueUrl,
      queueArn: queues.queueArn,
      maxConcurrency: ORG_MAX_CONCURRENCY,
      deliver: (event) => runDiscoveryInvocation(wiring, event, 900_000),
      onError: (error) => progress(`fan-out error: ${String(error)}`),
    }).start();

    proxy.setThrottle({ ...THROTTLE });
    proxy.setFaults({ seed: 1, rates: {}, latencyMs: LATENCY_MS });
    proxy.requireRoles(true);
    proxy.resetCalls();
    progress(
      `one fanned-out run over ${accountRegions.length} account-regions, at most ${ORG_MAX_CONCURRENCY} at once`,
    );
    const t0 = performance.now();
    const started = await startFanOutRun(fanOut);
    let summary: FanOutSummary | undefined;
    let reported = performance.now();
    for (;;) {
      const run = await fanOut.ledger.getRun(started.runId);
      if (run?.status === RunStatus.COMPLETED) {
        summary = await runSummary(fanOut, run);
        break;
      }
      if (performance.now() - reported > 10_000) {
        reported = performance.now();
        progress(
          `  ${run?.unitsDone ?? 0} of ${run?.unitsTotal} units ended, ${run?.invocations ?? 0} invocations, ${poller.invocations} deliveries`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const wallMs = performance.now() - t0;
    const peakConcurrency = poller.peakConcurrency;
    await poller.stop();
    poller = undefined;

    const perAr = proxy.calls.byAccountRegion({ service: 'apigateway' });
    const callsByAr = Object.values(perAr);
    const slowestCalls = Math.max(...callsByAr);
    // The slowest account-region alone at the rate limit: its calls beyond the burst at the rate, and
    // its sequential round trips (listing, stages, exports) at the added latency.
    const idealMs =
      (Math.max(0, slowestCalls - THROTTLE.burst) / THROTTLE.ratePerSecond) * 1000 + 3 * LATENCY_MS;
    // Every unit's own summary (the run summary lists at most SUMMARY_ACCOUNT_REGIONS_MAX of them).
    const unitDurations = (await fanOut.ledger.listUnits(started.runId)).flatMap((u) =>
      u.outcome ? [u.outcome.summary.durationMs] : [],
    );
    const overheadMs = median(unitDurations);
    const cost = organizationMonthlyCost({ unitOverheadMs: overheadMs });
    const complete = summary.fanOut.unitStatus.complete ?? 0;
    const figures: Figure[] = [
      figure('org: account-regions discovered (complete)', complete, 'account-regions', {
        op: '>=',
        value: 200,
      }),
      figure(
        'org: run wall time',
        round(wallMs / 1000, 2),
        's',
        undefined,
        'coordinator start to the completed RUN# record',
      ),
      figure(
        'org: ideal (slowest account-region alone at the rate limit)',
        round(idealMs / 1000, 2),
        's',
        undefined,
        `${slowestCalls} calls, burst ${THROTTLE.burst}, ${THROTTLE.ratePerSecond}/s, ${LATENCY_MS} ms latency × 3 round trips`,
      ),
      figure('org: wall time / ideal', round(wallMs / idealMs, 1), '×'),
      figure(
        'org: invocations',
        summary.fanOut.invocations + 1,
        'invocations',
        undefined,
        'units + the coordinator',
      ),
      figure(
        'org: API Gateway calls',
        callsByAr.reduce((a, b) => a + b, 0),
        'calls',
      ),
      figure('org: throttled calls', summary.throttles, 'calls'),
      figure('org: median unit duration', round(overheadMs, 0), 'ms'),
      figure(
        `cost model: ${COST_MODEL.accounts} accounts × ${COST_MODEL.regions} regions × ${COST_MODEL.apisPerAccountRegion} APIs, every ${COST_MODEL.scheduleMinutes} min`,
        cost.monthly.total,
        'USD/month',
        undefined,
        `Lambda ${cost.monthly.lambdaCompute} + requests ${cost.monthly.lambdaRequests} + DynamoDB ${cost.monthly.dynamoDb} + SQS ${cost.monthly.sqs}; ${cost.unitMs} ms a unit (${cost.callsPerUnit} calls at 5/s)`,
      ),
      figure(
        'cost model: the same with change events (reconciliation every 6 hours)',
        organizationMonthlyCost({ unitOverheadMs: overheadMs, scheduleMinutes: 360 }).monthly.total,
        'USD/month',
        undefined,
        'targeted runs of the changed APIs come on top (4 calls a redeploy)',
      ),
      figure(
        'cost model: one run, wall time at maxConcurrency 50',
        round(cost.runWallMsAtConcurrency(50) / 1000, 1),
        's',
      ),
    ];
    return {
      figures,
      details: {
        accounts: ORG_ACCOUNTS,
        regions: ORG_REGIONS,
        apisPerAccountRegion: ORG_APIS_PER_ACCOUNT_REGION,
        maxConcurrency: ORG_MAX_CONCURRENCY,
        throttle: THROTTLE,
        latencyMs: LATENCY_MS,
        wallMs: Math.round(wallMs),
        idealMs: Math.round(idealMs),
        peakConcurrency,
        summary: {
          counts: summary.counts,
          apiCalls: summary.apiCalls,
          throttles: summary.throttles,
          partial: summary.partial,
          fanOut: summary.fanOut,
          organization: summary.organization,
        },
        unitDurationsMs: { median: overheadMs, max: Math.max(...unitDurations) },
        costModel: { ...COST_MODEL, ...cost, runWallMsAtConcurrency: cost.runWallMsAtConcurrency(50) },
      },
    };
  } finally {
    await poller?.stop();
    await proxy?.stop();
    await moto.stop();
  }
}
