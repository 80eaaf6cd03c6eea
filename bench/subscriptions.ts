/**
 * Subscriptions: 200 subscribe + 200 unsubscribe through the real handler (`createSubscriptionsHandler`
 * with the core's wiring), sequential and 20 at a time, against the same emulator and proxy (throttle
 * and +20 ms on API Gateway calls, AWS's 5/s on the key operations). The reference is the raw AWS calls a
 * subscription needs — CreateApiKey + CreateUsagePlanKey for a subscribe, DeleteApiKey for an
 * unsubscribe — made with the same SDK client settings, through the same per-account-region limiters
 * (the key bucket included) and retry policy, against the
 * same proxy, in the same pattern: the ratio isolates what the agent adds (ledger record, idempotency,
 * key derivation) on top of the calls it cannot avoid.
 */
import {
  CreateApiKeyCommand,
  CreateUsagePlanKeyCommand,
  DeleteApiKeyCommand,
} from '@aws-sdk/client-api-gateway';
import {
  AwsClientFactory,
  CatalogRepository,
  callWithRetry,
  createSubscriptionsWiring,
  type FederatedApi,
  loadConfig,
  noRelay,
  RateLimiterRegistry,
} from '../layers/federation-core/src/index.js';
import { mapPool } from '../layers/federation-core/src/pool.js';
import type { DiscoveryScenarioResult } from './discovery.js';
import {
  ACCOUNT_REGIONS,
  agentConfig,
  type BenchEnv,
  CREDENTIALS,
  KEY_THROTTLE,
  REGION,
  THROTTLE,
} from './env.js';
import { type Figure, figure } from './lib/report.js';
import { percentile, ratio, round } from './lib/stats.js';

export const SUBSCRIPTIONS = 200;
export const CONCURRENCY = 20;

interface Target {
  readonly apiId: string;
  readonly planId: string;
  readonly usagePlanId: string;
  readonly region: string;
  readonly accountId: string;
  readonly roleArn?: string;
}

/** Environment of the subscriptions function (what `loadConfig` reads); no secret values. */
export function functionEnv(
  scenario: DiscoveryScenarioResult,
  endpoint: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    AWS_REGION: REGION,
    AWS_ENDPOINT_URL: endpoint,
    FED_CONFIG: JSON.stringify(agentConfig(scenario.tableName, scenario.secrets)),
    ...extra,
  };
}

type Phase = { latencies: number[]; failures: number; ms: number };

/**
 * In the sequential phases a call starts at most every this many ms. The targets go round robin over the
 * 4 account-regions, so each sees at most 1000 / (4 × 60) = 4.2 key calls/s, under the 5/s key quota:
 * neither side waits for its key bucket, and the sequential ratio compares latencies, not pacing (the raw
 * `DeleteApiKey` alone would otherwise run at ~9/s per account-region and wait).
 */
const SEQUENTIAL_INTERVAL_MS = 60;

async function timed<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<unknown>,
): Promise<Phase> {
  const latencies: number[] = [];
  let failures = 0;
  const t0 = performance.now();
  await mapPool(items, concurrency, async (item) => {
    const start = performance.now();
    try {
      await fn(item);
      latencies.push(performance.now() - start);
    } catch {
      failures++;
    }
    const rest = SEQUENTIAL_INTERVAL_MS - (performance.now() - start);
    if (concurrency === 1 && rest > 0) await new Promise((resolve) => setTimeout(resolve, rest));
  });
  return { latencies, failures, ms: performance.now() - t0 };
}

/** AWS calls per handler call seen by the proxy since the last reset, by service:operation. */
function callsPerOp(env: BenchEnv, n: number): string {
  const counts: Record<string, number> = {};
  for (const c of env.proxy.calls.list())
    counts[`${c.service}:${c.operation}`] = (counts[`${c.service}:${c.operation}`] ?? 0) + 1;
  return Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ${round(v / n, 2)}`)
    .join(', ');
}

export async function benchSubscriptions(
  env: BenchEnv,
  scenario: DiscoveryScenarioResult,
  progress: (m: string) => void,
): Promise<{ figures: Figure[]; details: Record<string, unknown> }> {
  const fnEnv = functionEnv(scenario, env.proxy.endpoint);
  Object.assign(process.env, fnEnv); // the handler module reads its config at import
  const { createSubscriptionsHandler } = await import('../functions/subscriptions/handler.js');
  const config = loadConfig(fnEnv);
  const clients = () =>
    new AwsClientFactory({ region: REGION, endpoint: env.proxy.endpoint, credentials: { ...CREDENTIALS } });

  // What can be subscribed to: every plan of the discovered catalog, round robin over account-regions.
  const catalog = new CatalogRepository({
    client: clients().dynamoDocument(),
    tableName: scenario.tableName,
  });
  const perAr = await Promise.all(
    ACCOUNT_REGIONS.map((ar) => catalog.listByAccountRegion(ar.accountId, ar.region)),
  );
  const roleOf = new Map(ACCOUNT_REGIONS.map((ar) => [ar.accountId, ar.roleArn]));
  const toTargets = (apis: FederatedApi[]): Target[] =>
    apis.flatMap((api) =>
      api.plans.map((plan) => ({
        apiId: api.id,
        planId: plan.id,
        usagePlanId: plan.usagePlanId,
        region: api.source.region,
        accountId: api.source.accountId,
        ...(roleOf.get(api.source.accountId) ? { roleArn: roleOf.get(api.source.accountId)! } : {}),
      })),
    );
  const lists = perAr.map(toTargets);
  const targets: Target[] = [];
  for (let i = 0; targets.length < SUBSCRIPTIONS; i++) {
    const list = lists[i % lists.length]!;
    if (list.length === 0)
      throw new Error('subscriptions benchmark: the catalog has no plans in an account-region');
    targets.push(list[Math.floor(i / lists.length) % list.length]!);
  }
  const context = { getRemainingTimeInMillis: () => 30_000 };

  /** A fresh function container: new clients, limiter and secret cache. */
  const ours = () => {
    const wiring = createSubscriptionsWiring({ config, clients: clients() });
    return createSubscriptionsHandler({ service: wiring.service, outbox: wiring.outbox, publisher: noRelay });
  };
  /** The raw calls, same SDK client settings, same limiters (key bucket included) and retry policy. */
  const raw = () => {
    const factory = clients();
    const limiters = new RateLimiterRegistry({ ...THROTTLE }, { ...KEY_THROTTLE });
    const call = <T>(t: Target, operation: string, fn: () => Promise<T>) =>
      callWithRetry(fn, { limiter: limiters.forOperation(t.accountId, t.region, operation), maxAttempts: 4 });
    const client = (t: Target) =>
      factory.apiGateway({
        region: t.region,
        accountId: t.accountId,
        ...(t.roleArn ? { roleArn: t.roleArn } : {}),
      });
    return { call, client };
  };

  const figures: Figure[] = [];
  const details: Record<string, unknown> = {};
  for (const [mode, concurrency] of [
    ['sequential', 1],
    [`${CONCURRENCY} concurrent`, CONCURRENCY],
  ] as const) {
    const tag = concurrency === 1 ? 'seq' : 'conc';
    const indexes = targets.map((_, i) => i);

    env.armProxy();
    env.proxy.resetCalls();
    progress(`subscriptions: ${SUBSCRIPTIONS} subscribe, ${mode}…`);
    const handler = ours();
    const subscribe = await timed(indexes, concurrency, (i) =>
      handler(
        {
          action: 'subscribe',
          subscriptionId: `bench-${tag}-${i}`,
          apiId: targets[i]!.apiId,
          planId: targets[i]!.planId,
          application: { id: `app-${i}`, name: `Bench application ${i}` },
        },
        context,
      ),
    );
    const subscribeCalls = callsPerOp(env, SUBSCRIPTIONS);
    env.proxy.resetCalls();
    progress(`subscriptions: ${SUBSCRIPTIONS} unsubscribe, ${mode}…`);
    const unsubscribe = await timed(indexes, concurrency, (i) =>
      handler({ action: 'unsubscribe', subscriptionId: `bench-${tag}-${i}` }, context),
    );
    const unsubscribeCalls = callsPerOp(env, SUBSCRIPTIONS);

    env.armProxy();
    progress(`subscriptions: raw AWS calls, ${mode}…`);
    const r = raw();
    const keyIds: string[] = [];
    const rawSubscribe = await timed(indexes, concurrency, async (i) => {
      const t = targets[i]!;
      const key = await r.call(t, 'CreateApiKey', () =>
        r.client(t).send(new CreateApiKeyCommand({ name: `raw-${tag}-${i}`, enabled: true })),
      );
      keyIds[i] = key.id!;
      await r.call(t, 'CreateUsagePlanKey', () =>
        r
          .client(t)
          .send(
            new CreateUsagePlanKeyCommand({ usagePlanId: t.usagePlanId, keyId: key.id!, keyType: 'API_KEY' }),
          ),
      );
    });
    const rawUnsubscribe = await timed(indexes, concurrency, (i) =>
      r.call(targets[i]!, 'DeleteApiKey', () =>
        r.client(targets[i]!).send(new DeleteApiKeyCommand({ apiKey: keyIds[i]! })),
      ),
    );

    for (const [op, mine, reference, rawCalls, perCall] of [
      ['subscribe', subscribe, rawSubscribe, 'CreateApiKey + CreateUsagePlanKey', subscribeCalls],
      ['unsubscribe', unsubscribe, rawUnsubscribe, 'DeleteApiKey', unsubscribeCalls],
    ] as const) {
      const name = `subscriptions ${op}, ${mode}`;
      const p = (q: number) => (mine.latencies.length ? round(percentile(mine.latencies, q), 1) : Number.NaN);
      const rp = (q: number) =>
        reference.latencies.length ? round(percentile(reference.latencies, q), 1) : Number.NaN;
      figures.push(
        figure(
          `${name}: p50`,
          p(50),
          'ms',
          undefined,
          `${SUBSCRIPTIONS} calls of the handler; failures: ${mine.failures}; phase took ${round(mine.ms / 1000, 1)} s`,
        ),
        figure(`${name}: p95`, p(95), 'ms'),
        figure(`${name}: p99`, p(99), 'ms'),
        figure(
          `${name}: p50 / raw AWS calls p50`,
          ratio(p(50), rp(50), 2),
          'ratio',
          { op: '<=', value: 1.3 },
          `raw ${rawCalls}: p50 ${rp(50)} ms, p95 ${rp(95)} ms, p99 ${rp(99)} ms (raw failures ${reference.failures}); p95 ratio ${ratio(p(95), rp(95), 2)}; AWS calls per ${op} (ours): ${perCall}`,
        ),
      );
      details[`${op} ${mode}`] = {
        callsPerOperation: perCall,
        ours: { p50: p(50), p95: p(95), p99: p(99), failures: mine.failures, phaseMs: round(mine.ms) },
        raw: {
          p50: rp(50),
          p95: rp(95),
          p99: rp(99),
          failures: reference.failures,
          phaseMs: round(reference.ms),
        },
      };
    }
    details[`proxy ${mode}`] = {
      sent429: env.proxy.stats.throttle.sent429,
      sent429ByOperation: env.proxy.stats.throttle.sent429ByOperation,
    };
  }
  return { figures, details };
}
