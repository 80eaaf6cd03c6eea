/**
 * Fan-out wired to the emulator: the discovery harness's ledger and clients, a fan-out queue and its
 * dead-letter queue in moto, and the local runtime's poller standing in for Lambda's event source mapping.
 */
import { randomUUID } from 'node:crypto';
import { SQSClient } from '@aws-sdk/client-sqs';
import { memberCredentials, seedOrganization as seedMotoOrganization } from '../../emulator/organizations.js';
import {
  type AgentConfigInput,
  type FanOutDeps,
  FanOutRunLedger,
  type FanOutRunRecord,
  type FanOutSettings,
  type OutboxEvent,
  parseAgentConfig,
  processFanOutBatch,
  RateLimiterRegistry,
  RunStatus,
  SqsWorkQueue,
  type StepBudget,
} from '../../layers/federation-core/src/index.js';
import { createFanOutQueues, FanOutPoller } from '../../local/fan-out-poller.js';
import type { Emulator } from '../support/emulator.js';
import { type DiscoveryHarness, discoveryHarness, TEST_RETRY } from './harness.js';

export interface FanOutHarness {
  readonly h: DiscoveryHarness;
  readonly deps: FanOutDeps;
  readonly sqs: SQSClient;
  readonly queues: Awaited<ReturnType<typeof createFanOutQueues>>;
  readonly published: OutboxEvent[];
  readonly replies: unknown[];
  readonly poller: FanOutPoller;
  /** Waits until the run's record says completed (or throws after `timeoutMs`). */
  completed(runId: string, timeoutMs?: number): Promise<FanOutRunRecord>;
  stop(): Promise<void>;
}

export async function fanOutHarness(
  emu: Emulator,
  config: AgentConfigInput,
  options: {
    settings?: Partial<FanOutSettings>;
    budget?: () => StepBudget;
    maxConcurrency?: number;
    harness?: DiscoveryHarness;
    /** The account-regions' buckets (default 100/s, burst 100). */
    rateLimit?: { ratePerSecond: number; burst: number };
  } = {},
): Promise<FanOutHarness> {
  const h = options.harness ?? (await discoveryHarness(emu, config));
  const agent = parseAgentConfig(config);
  const sqs = new SQSClient(emu.clientConfig({ via: 'moto', maxAttempts: 3 }));
  const queues = await createFanOutQueues(sqs, {
    name: `fan-out-${randomUUID().slice(0, 8)}`,
    maxReceiveCount: options.settings?.maxReceiveCount ?? agent.fanOut.maxReceiveCount,
  });
  const published: OutboxEvent[] = [];
  const replies: unknown[] = [];
  const deps: FanOutDeps = {
    ledger: new FanOutRunLedger(h.table),
    queue: new SqsWorkQueue(sqs, queues.queueUrl),
    unit: {
      apiGateway: h.deps.apiGateway,
      catalog: h.catalog,
      outbox: h.outbox,
      definitions: h.definitions,
      leases: h.leases,
      revocations: h.deps.revocations,
      now: () => new Date(),
    },
    expansion: {
      callerAccountId: h.deps.callerAccountId,
      organizations: (roleArn) => h.clients.organizations(roleArn),
    },
    outbox: h.outbox,
    publisher: {
      publishEvents: async (events) => {
        published.push(...events);
      },
      reply: async (_connectionId, reply) => {
        replies.push(reply);
      },
    },
    limiters: new RateLimiterRegistry(options.rateLimit ?? { ratePerSecond: 100, burst: 100 }),
    settings: {
      sources: agent.sources,
      defaultRegion: emu.region,
      acceptApiWithoutUsagePlan: agent.acceptApiWithoutUsagePlan,
      labels: agent.labels,
      callConcurrency: 4,
      retry: TEST_RETRY,
      maxReceiveCount: agent.fanOut.maxReceiveCount,
      deadlineMs: agent.fanOut.deadlineMinutes * 60_000,
      waitMs: 0,
      ...options.settings,
    },
    ...(options.budget ? { budget: options.budget } : {}),
  };
  const poller = new FanOutPoller({
    sqs,
    queueUrl: queues.queueUrl,
    queueArn: queues.queueArn,
    maxConcurrency: options.maxConcurrency ?? agent.fanOut.maxConcurrency,
    retryVisibilitySeconds: 0,
    deliver: (event) => processFanOutBatch(deps, event.Records as never, 600_000),
    ...(process.env.FAN_OUT_DEBUG ? { onError: (error: unknown) => console.error('poller', error) } : {}),
  }).start();
  return {
    h,
    deps,
    sqs,
    queues,
    published,
    replies,
    poller,
    async completed(runId, timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const run = await deps.ledger.getRun(runId);
        // Completed, and its discovery.completed appended (when it has one).
        const answered =
          run?.completedSeq !== undefined ||
          (run?.events === 0 && !run.partial && run.unitsDone >= run.unitsTotal);
        if (run?.status === RunStatus.COMPLETED && answered) return run;
        if (Date.now() > until) throw new Error(`run ${runId} not completed: ${JSON.stringify(run)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      await poller.stop();
      sqs.destroy();
    },
  };
}

/** Temporary credentials of an account (moto lets any role be assumed; straight to moto). */
export function accountCredentials(emu: Emulator, accountId: string) {
  return memberCredentials(emu.motoEndpoint, accountId);
}

/** An organisation in moto (see `emulator/organizations.ts`). */
export function seedOrganization(
  emu: Emulator,
  options: { accounts: number; withoutRole: number; roleName: string },
): ReturnType<typeof seedMotoOrganization> {
  return seedMotoOrganization(emu.motoEndpoint, options);
}
