/**
 * One discovery run in a process of its own, so its peak RSS is discovery's (and nothing else's).
 * Bundled by `bench/run.ts` with esbuild and run with plain `node`: `node discovery-child.cjs <args.json>`.
 * API Gateway and STS go through the fidelity proxy; the ledger goes straight to moto with a middleware
 * that estimates the DynamoDB request units of every call. Writes its result as JSON to `resultFile`.
 */
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  type AgentConfigInput,
  AwsClientFactory,
  CatalogRepository,
  DefinitionStore,
  DiscoveryEngine,
  type DiscoverySummary,
  discoverySettingsOf,
  LeaseRepository,
  ledgerPlanRevocations,
  Outbox,
  parseAgentConfig,
  RateLimiter,
  RateLimiterRegistry,
  RunRepository,
  SubscriptionRepository,
} from '../layers/federation-core/src/index.js';
import { type CapacityTally, emptyTally, recordCapacity } from './lib/capacity.js';

export interface DiscoveryChildArgs {
  readonly proxyEndpoint: string;
  readonly motoEndpoint: string;
  readonly region: string;
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  readonly config: AgentConfigInput;
  readonly full?: boolean;
  /** Where to write the run's outbox events (JSON array), when wanted. */
  readonly eventsFile?: string;
  readonly resultFile: string;
  /** Diagnostics: write every token grant and request send (absolute ms) to this file. */
  readonly traceFile?: string;
}

/** Absolute wall-clock ms with sub-ms resolution, comparable across processes. */
const absNow = () => performance.timeOrigin + performance.now();

interface TraceEvent {
  readonly kind: 'grant' | 'send' | 'start' | 'end';
  readonly key: string;
  readonly t: number;
  /** grant: when acquire() was called. */
  readonly asked?: number;
  readonly rate?: number;
}

/** Wraps the limiter classes (diagnostics only) so each token grant is logged with its account-region. */
function traceLimiters(trace: TraceEvent[]): void {
  const keys = new WeakMap<object, string>();
  const forTarget = RateLimiterRegistry.prototype.forTarget;
  RateLimiterRegistry.prototype.forTarget = function (this: RateLimiterRegistry, accountId, region) {
    const limiter = forTarget.call(this, accountId, region);
    keys.set(limiter, `${accountId}/${region}`);
    return limiter;
  };
  const acquire = RateLimiter.prototype.acquire;
  RateLimiter.prototype.acquire = async function (this: RateLimiter) {
    const asked = absNow();
    await acquire.call(this);
    trace.push({ kind: 'grant', key: keys.get(this) ?? '?', t: absNow(), asked, rate: this.currentRate });
  };
}

export interface DiscoveryChildResult {
  readonly summary: DiscoverySummary;
  /** Events the run appended (discovery.completed included). */
  readonly events: number;
  /** Wall time of `engine.run()`, ms. */
  readonly runMs: number;
  /** Peak resident set size of this process, KiB (`process.resourceUsage().maxRSS`). */
  readonly maxRssKiB: number;
  readonly capacity: CapacityTally;
}

async function main(): Promise<void> {
  const args = JSON.parse(await readFile(process.argv[2]!, 'utf8')) as DiscoveryChildArgs;
  const agent = parseAgentConfig(args.config);
  const clients = new AwsClientFactory({
    region: args.region,
    endpoint: args.proxyEndpoint,
    credentials: args.credentials,
  });
  const trace: TraceEvent[] = [];
  if (args.traceFile) traceLimiters(trace);
  const capacity = emptyTally();
  const dynamo = new DynamoDBClient({
    region: args.region,
    endpoint: args.motoEndpoint,
    credentials: args.credentials,
  });
  dynamo.middlewareStack.add(
    (next, context) => async (call) => {
      const result = await next(call);
      recordCapacity(
        capacity,
        context.commandName ?? 'unknown',
        call.input as Record<string, unknown>,
        result.output as unknown as Record<string, unknown>,
      );
      return result;
    },
    { step: 'initialize', name: 'benchCapacity', priority: 'low' },
  );
  const table = {
    client: DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } }),
    tableName: agent.tableName,
  };
  const traced = new WeakSet<object>();
  const engine = new DiscoveryEngine(
    {
      apiGateway: (target) => {
        const client = clients.apiGateway(target);
        if (args.traceFile && !traced.has(client)) {
          traced.add(client);
          client.middlewareStack.add(
            (next) => async (call) => {
              trace.push({
                kind: 'send',
                key: `${target.accountId ?? 'self'}/${target.region}`,
                t: absNow(),
              });
              return next(call);
            },
            { step: 'finalizeRequest', name: 'benchTrace', priority: 'low' },
          );
        }
        return client;
      },
      callerAccountId: async () =>
        (await clients.sts().send(new GetCallerIdentityCommand({}))).Account as string,
      catalog: new CatalogRepository(table),
      outbox: new Outbox(table, { retentionDays: agent.outboxRetentionDays }),
      definitions: new DefinitionStore(table),
      runs: new RunRepository(table),
      leases: new LeaseRepository(table),
      revocations: ledgerPlanRevocations(new SubscriptionRepository(table)),
    },
    discoverySettingsOf(agent, args.region),
  );
  const t0 = performance.now();
  trace.push({ kind: 'start', key: '', t: absNow() });
  const result = await engine.run({ full: args.full ?? false });
  const runMs = performance.now() - t0;
  trace.push({ kind: 'end', key: '', t: absNow() });
  if (args.traceFile) writeFileSync(args.traceFile, JSON.stringify(trace));
  if (args.eventsFile) writeFileSync(args.eventsFile, JSON.stringify(result.events));
  const out: DiscoveryChildResult = {
    summary: result.summary,
    events: result.events.length,
    runMs,
    maxRssKiB: process.resourceUsage().maxRSS,
    capacity,
  };
  writeFileSync(args.resultFile, JSON.stringify(out));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
