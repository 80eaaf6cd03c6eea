/**
 * Discovery of the configured sources: each account-region is run as an `AccountRegionRun`
 * (`account-region.ts`: read → build the catalog → diff → commit), concurrently; the run summary is
 * stored as a `RUN#` record and announced with `discovery.completed`. See docs/architecture.md.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import type { OrganizationsClient } from '@aws-sdk/client-organizations';
import type { AwsTarget } from '../aws/clients.js';
import { type Clock, RateLimiterRegistry } from '../aws/rate-limiter.js';
import { effectiveSources, roleArnOf } from '../config/load.js';
import type { AgentConfig, Source } from '../config/schema.js';
import { BusyError, ConfigError, ValidationError } from '../errors.js';
import type { CatalogRepository } from '../ledger/catalog.js';
import type { DefinitionStore } from '../ledger/definitions.js';
import type { LeaseRepository } from '../ledger/lease.js';
import type { Outbox, OutboxEvent } from '../ledger/outbox.js';
import type { Logger } from '../logger.js';
import { EventType } from '../model.js';
import { mapPool } from '../pool.js';
import type { PlanRevocations } from '../ports/revocations.js';
import { AccountRegionRun } from './account-region.js';
import type { ChangeTarget } from './change-events.js';
import { listOrganizationAccounts } from './organization.js';
import type { ReaderRetryOptions } from './reader.js';
import type { RunRepository } from './runs.js';
import {
  type AccountRegionSummary,
  type DiscoverySummary,
  AccountRegionStatus as Status,
  summarizeRun,
} from './summary.js';

/** What discovery needs from the world; the handler wires the real adapters, tests the emulator's. */
export interface DiscoveryDeps {
  /** API Gateway client of an account-region (AwsClientFactory.apiGateway). */
  readonly apiGateway: (target: AwsTarget) => APIGatewayClient;
  /**
   * Account of the function's own credentials (`sts:GetCallerIdentity`), for sources with neither
   * `accountId` nor `roleArn`. Asked at most once per run.
   */
  readonly callerAccountId: () => Promise<string>;
  readonly catalog: CatalogRepository;
  readonly outbox: Outbox;
  readonly definitions: DefinitionStore;
  readonly runs: RunRepository;
  readonly leases: LeaseRepository;
  /**
   * The revocation port: the subscriptions a removed plan revokes, listed in `plan.removed` with a
   * `subscription.revoked` event each, then revoked (wired by the composition root to the
   * subscriptions capability; discovery itself deletes no key: its role has no DELETE).
   */
  readonly revocations: PlanRevocations;
  readonly logger?: Logger;
  /** Organizations client (organisation sources): the function's own credentials, or a listing role. */
  readonly organizations?: (listingRoleArn?: string) => OrganizationsClient;
  /** Clock of the rate limiters (tests). */
  readonly clock?: Clock;
  readonly now?: () => Date;
}

export type DiscoverySettings = Pick<
  AgentConfig,
  'sources' | 'acceptApiWithoutUsagePlan' | 'labels' | 'rateLimit' | 'concurrency'
> & {
  /** Region of the default source (the function's own) when `sources` is empty. */
  readonly defaultRegion: string;
  /** Lease of an account-region; longer than the longest run (Lambda's 15 minutes). Default 15 min. */
  readonly leaseTtlMs?: number;
  /** GetStages / GetExport calls in flight per account-region (the bucket sets the pace). Default 8. */
  readonly callConcurrency?: number;
  readonly retry?: ReaderRetryOptions;
};

/** A run's settings as the agent's configuration gives them (callers override some: tests, the benchmark). */
export function discoverySettingsOf(
  agent: Pick<AgentConfig, 'sources' | 'acceptApiWithoutUsagePlan' | 'labels' | 'rateLimit' | 'concurrency'>,
  defaultRegion: string,
): DiscoverySettings {
  return {
    sources: agent.sources,
    acceptApiWithoutUsagePlan: agent.acceptApiWithoutUsagePlan,
    labels: agent.labels,
    rateLimit: agent.rateLimit,
    concurrency: agent.concurrency,
    defaultRegion,
  };
}

export interface DiscoveryRunRequest {
  /** Names of the sources to discover; all when omitted. */
  readonly sources?: readonly string[];
  /** Re-export every definition, even of stages whose deployment did not change. */
  readonly full?: boolean;
  readonly runId?: string;
  /** Lease duration for this run (the handler passes its remaining time); default `settings.leaseTtlMs`. */
  readonly leaseTtlMs?: number;
  /**
   * Targeted run (change events): only these account-regions, and in each only the REST APIs named
   * (plus, with `usagePlans`, those whose usage-plan attachments changed). Account-regions of no
   * configured source are ignored.
   */
  readonly targets?: readonly ChangeTarget[];
}

export interface DiscoveryResult {
  /** The run summary (the `RUN#` record, `discovery.completed`): its `accountRegions` are bounded. */
  readonly summary: DiscoverySummary;
  /** Every outbox event the run appended, `discovery.completed` last: the relay publishes these. */
  readonly events: OutboxEvent[];
  /** Every account-region of the run, also those the summary does not list (change events retry by them). */
  readonly accountRegions: readonly AccountRegionSummary[];
}

const DEFAULT_LEASE_TTL_MS = 15 * 60_000;
const DEFAULT_CALL_CONCURRENCY = 8;

/**
 * Discovery: for each account-region of the configured sources, reads REST APIs, usage plans, stages
 * and (for changed deployments only) OpenAPI exports, diffs them with the ledger's catalog, stores
 * the catalog and appends one outbox event per change.
 */
export class DiscoveryEngine {
  /**
   * One token bucket per account-region, kept for the life of the container. The SDK's adaptive
   * retry mode only slows down after a 429; API Gateway's management API allows about 10 requests/s
   * per account-region (burst 40), so the bucket paces calls before AWS has to refuse any.
   */
  private readonly limiters: RateLimiterRegistry;
  private readonly now: () => Date;

  constructor(
    private readonly deps: DiscoveryDeps,
    private readonly settings: DiscoverySettings,
  ) {
    this.limiters = new RateLimiterRegistry({
      ratePerSecond: settings.rateLimit.ratePerSecond,
      burst: settings.rateLimit.burst,
      clock: deps.clock,
    });
    this.now = deps.now ?? (() => new Date());
  }

  /**
   * One run. Validates the request before any AWS call (unknown source → ValidationError); throws
   * BusyError when another run holds every requested account-region.
   */
  async run(request: DiscoveryRunRequest = {}): Promise<DiscoveryResult> {
    const sources = this.sourcesOf(request);
    const runId = request.runId ?? randomUUID();
    const full = request.full ?? false;
    const started = this.now();
    const t0 = performance.now();
    let caller: Promise<string> | undefined;
    const callerAccountId = () => {
      caller ??= this.deps.callerAccountId();
      return caller;
    };
    const { settings } = this;
    const runs = (await this.withOrganizationAccounts(sources)).flatMap((source) =>
      source.regions.map(
        (region) =>
          new AccountRegionRun(
            { ...this.deps, now: this.now },
            {
              acceptApiWithoutUsagePlan: settings.acceptApiWithoutUsagePlan,
              labels: settings.labels,
              callConcurrency: settings.callConcurrency ?? DEFAULT_CALL_CONCURRENCY,
              retry: settings.retry,
            },
            {
              source,
              region,
              runId,
              full,
              leaseTtlMs: request.leaseTtlMs ?? settings.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS,
              callerAccountId,
              limiter: (accountId, r) => this.limiters.forTarget(accountId, r),
              targets: request.targets,
            },
          ),
      ),
    );
    const outcomes = (await mapPool(runs, settings.concurrency, (run) => run.run())).filter(
      (o): o is NonNullable<typeof o> => o !== undefined,
    );

    if (outcomes.length > 0 && outcomes.every((o) => o.summary.status === Status.BUSY)) {
      throw new BusyError('another discovery run holds every requested account-region; retry later', {
        details: { accountRegions: outcomes.map((o) => `${o.summary.accountId}/${o.summary.region}`) },
      });
    }

    const events = outcomes.flatMap((o) => o.events);
    const summary = summarizeRun({
      runId,
      startedAt: started,
      finishedAt: this.now(),
      durationMs: Math.round(performance.now() - t0),
      full,
      ...(request.targets ? { targeted: true } : {}),
      sources: sources.map((s) => s.name),
      accountRegions: outcomes,
      events: events.length,
    });
    await this.deps.runs.put(summary);
    // `discovery.completed` tells the control plane that a batch of changes is complete (or that the
    // run was partial). A run that changed nothing appends no event at all: the RUN# record and the
    // reply to a `discover` command carry its summary.
    const completed =
      events.length > 0 || summary.partial
        ? await this.deps.outbox.append([{ event: EventType.DISCOVERY_COMPLETED, payload: summary }])
        : [];
    this.deps.logger?.info('discovery run finished', {
      runId,
      partial: summary.partial,
      counts: summary.counts,
      apiCalls: summary.apiCalls,
      durationMs: summary.durationMs,
    });
    return {
      summary,
      events: [...events, ...completed],
      accountRegions: outcomes.map((o) => o.summary),
    };
  }

  /**
   * Organisation scopes become one source per account (reached through the scope's role); the
   * others stay as they are.
   */
  private async withOrganizationAccounts(sources: readonly Source[]): Promise<Source[]> {
    const out: Source[] = [];
    for (const source of sources) {
      if (!source.organization) {
        out.push(source);
        continue;
      }
      if (!this.deps.organizations) {
        throw new ConfigError(
          `source ${source.name} is an organisation scope: no Organizations client is wired`,
        );
      }
      const accounts = await listOrganizationAccounts(
        this.deps.organizations(source.organization.listingRoleArn),
        source.organization,
      );
      for (const { accountId } of accounts) {
        const roleArn = roleArnOf(source, accountId, source.regions[0] ?? this.settings.defaultRegion);
        out.push({ name: source.name, accountId, regions: source.regions, ...(roleArn ? { roleArn } : {}) });
      }
    }
    return out;
  }

  /** The sources a request names (all when it names none); an unknown name is a ValidationError. */
  private sourcesOf(request: DiscoveryRunRequest) {
    const all = effectiveSources(
      { sources: this.settings.sources } as AgentConfig,
      this.settings.defaultRegion,
    );
    if (!request.sources || request.sources.length === 0) return all;
    const known = new Set(all.map((s) => s.name));
    const unknown = request.sources.filter((name) => !known.has(name));
    if (unknown.length > 0) {
      throw new ValidationError(
        `unknown source(s) ${unknown.join(', ')}; configured: ${[...known].join(', ')}`,
        { details: { unknown, configured: [...known] } },
      );
    }
    return all.filter((s) => request.sources?.includes(s.name));
  }
}
