import { randomUUID } from 'node:crypto';
import type { APIGatewayClient, RestApi, Stage, UsagePlan } from '@aws-sdk/client-api-gateway';
import type { AwsTarget } from '../aws/clients.js';
import { type Clock, RateLimiterRegistry } from '../aws/rate-limiter.js';
import { effectiveSources } from '../config/load.js';
import type { AgentConfig, Source } from '../config/schema.js';
import { BusyError, toFederationError, ValidationError } from '../errors.js';
import type { CatalogRepository } from '../ledger/catalog.js';
import type { DefinitionStore } from '../ledger/definitions.js';
import type { LeaseRepository } from '../ledger/lease.js';
import type { NewEvent, Outbox, OutboxEvent } from '../ledger/outbox.js';
import type { Logger } from '../logger.js';
import { type DefinitionRef, EventType, type FederatedApi, type FederatedPlan } from '../model.js';
import { mapPool } from '../pool.js';
import type { PlanRevocations } from '../ports/revocations.js';
import { diffCatalog } from './diff.js';
import {
  detectDefinitionFormat,
  federatedApiId,
  federatedPlanId,
  fingerprint,
  labelsFromTags,
  passesLabelFilter,
  stageEndpoint,
} from './identity.js';
import { ApiGatewayReader, type ReaderRetryOptions } from './reader.js';
import type { RunRepository } from './runs.js';
import {
  type AccountRegionStatus,
  type AccountRegionSummary,
  addCalls,
  addCounts,
  type DiscoveryCounts,
  type DiscoveryError,
  type DiscoverySummary,
  emptyCounts,
  AccountRegionStatus as Status,
} from './summary.js';

/** Catalog writes in flight at the end of a run (DynamoDB on-demand absorbs far more). */
const CATALOG_WRITE_CONCURRENCY = 16;

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

export interface DiscoveryRunRequest {
  /** Names of the sources to discover; all when omitted. */
  readonly sources?: readonly string[];
  /** Re-export every definition, even of stages whose deployment did not change. */
  readonly full?: boolean;
  readonly runId?: string;
  /** Lease duration for this run (the handler passes its remaining time); default `settings.leaseTtlMs`. */
  readonly leaseTtlMs?: number;
}

export interface DiscoveryResult {
  readonly summary: DiscoverySummary;
  /** Every outbox event the run appended, `discovery.completed` last: the relay publishes these. */
  readonly events: OutboxEvent[];
}

const DEFAULT_LEASE_TTL_MS = 15 * 60_000;

/** Lease name of an account-region: one discovery at a time per account-region. */
export function discoveryLeaseName(accountId: string, region: string): string {
  return `discovery#${accountId}#${region}`;
}

/** The account of a role ARN (`arn:aws:iam::<account>:role/...`). */
function accountOfRole(roleArn: string | undefined): string | undefined {
  return roleArn ? /^arn:[^:]+:iam::(\d{12}):/.exec(roleArn)?.[1] : undefined;
}

interface Unit {
  readonly source: Source;
  readonly region: string;
}

interface UnitOutcome {
  readonly summary: AccountRegionSummary;
  readonly errors: DiscoveryError[];
  readonly events: OutboxEvent[];
}

/**
 * Discovery: for each account-region of the configured sources, reads REST APIs, usage plans, stages
 * and (for changed deployments only) OpenAPI exports, diffs them with the ledger's catalog, stores
 * the catalog and appends one outbox event per change. See docs/architecture.md.
 */
export class DiscoveryEngine {
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
    const all = effectiveSources(
      { sources: this.settings.sources } as AgentConfig,
      this.settings.defaultRegion,
    );
    let sources = all;
    if (request.sources && request.sources.length > 0) {
      const known = new Set(all.map((s) => s.name));
      const unknown = request.sources.filter((name) => !known.has(name));
      if (unknown.length > 0) {
        throw new ValidationError(
          `unknown source(s) ${unknown.join(', ')}; configured: ${[...known].join(', ')}`,
          { details: { unknown, configured: [...known] } },
        );
      }
      sources = all.filter((s) => request.sources?.includes(s.name));
    }
    const runId = request.runId ?? randomUUID();
    const full = request.full ?? false;
    const started = this.now();
    const t0 = performance.now();
    let caller: Promise<string> | undefined;
    const callerAccountId = () => {
      caller ??= this.deps.callerAccountId();
      return caller;
    };

    const units: Unit[] = sources.flatMap((source) => source.regions.map((region) => ({ source, region })));
    const outcomes = await mapPool(units, this.settings.concurrency, (unit) =>
      this.discoverUnit(unit, runId, full, callerAccountId, request.leaseTtlMs),
    );

    if (outcomes.length > 0 && outcomes.every((o) => o.summary.status === Status.BUSY)) {
      throw new BusyError('another discovery run holds every requested account-region; retry later', {
        details: { accountRegions: outcomes.map((o) => `${o.summary.accountId}/${o.summary.region}`) },
      });
    }

    const counts = emptyCounts();
    const apiCalls: Record<string, number> = {};
    let throttles = 0;
    for (const o of outcomes) {
      addCounts(counts, o.summary.counts);
      addCalls(apiCalls, o.summary.apiCalls);
      throttles += o.summary.throttles;
    }
    const events = outcomes.flatMap((o) => o.events);
    const summary: DiscoverySummary = {
      runId,
      startedAt: started.toISOString(),
      finishedAt: this.now().toISOString(),
      durationMs: Math.round(performance.now() - t0),
      full,
      sources: sources.map((s) => s.name),
      partial: outcomes.some(
        (o) => o.summary.status === Status.PARTIAL || o.summary.status === Status.FAILED,
      ),
      counts,
      apiCalls,
      throttles,
      accountRegions: outcomes.map((o) => o.summary),
      errors: outcomes.flatMap((o) => o.errors),
      events: events.length,
    };
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
      counts,
      apiCalls,
      durationMs: summary.durationMs,
    });
    return { summary, events: [...events, ...completed] };
  }

  private async discoverUnit(
    unit: Unit,
    runId: string,
    full: boolean,
    callerAccountId: () => Promise<string>,
    leaseTtlMs: number | undefined,
  ): Promise<UnitOutcome> {
    const t0 = performance.now();
    const { source, region } = unit;
    const errors: DiscoveryError[] = [];
    const counts = emptyCounts();
    let accountId: string | undefined = source.accountId ?? accountOfRole(source.roleArn);
    const finish = (
      status: AccountRegionStatus,
      reader?: ApiGatewayReader,
      events: OutboxEvent[] = [],
    ): UnitOutcome => ({
      summary: {
        source: source.name,
        accountId,
        region,
        status,
        counts,
        apiCalls: { ...(reader?.calls ?? {}) },
        throttles: reader?.throttles ?? 0,
        durationMs: Math.round(performance.now() - t0),
      },
      errors,
      events,
    });
    const fail = (error: unknown, operation?: string): void => {
      const typed = toFederationError(error, operation ?? 'discovery');
      errors.push({
        source: source.name,
        accountId,
        region,
        operation,
        code: typed.code,
        message: typed.message,
      });
      this.deps.logger?.warn('discovery call failed', {
        source: source.name,
        accountId,
        region,
        operation,
        error: typed.toJSON(),
      });
    };

    try {
      accountId ??= await callerAccountId();
    } catch (error) {
      fail(error, 'GetCallerIdentity');
      return finish(Status.FAILED);
    }

    const leaseName = discoveryLeaseName(accountId, region);
    const leaseTtl = leaseTtlMs ?? this.settings.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
    const lease = await this.deps.leases.acquire(leaseName, runId, leaseTtl);
    if (!lease) {
      this.deps.logger?.info('account-region busy: another run holds its lease', { accountId, region });
      return finish(Status.BUSY);
    }
    const reader = new ApiGatewayReader(
      this.deps.apiGateway({ region, accountId: source.accountId, roleArn: source.roleArn }),
      this.limiters.forTarget(accountId, region),
      this.settings.retry,
    );
    try {
      return await this.discoverWithLease(unit, accountId, full, reader, counts, fail, finish, {
        name: leaseName,
        owner: runId,
        ttlMs: leaseTtl,
      });
    } finally {
      await this.deps.leases.release(leaseName, runId).catch((error) => fail(error, 'ReleaseLease'));
    }
  }

  private async discoverWithLease(
    unit: Unit,
    accountId: string,
    full: boolean,
    reader: ApiGatewayReader,
    counts: DiscoveryCounts,
    fail: (error: unknown, operation?: string) => void,
    finish: (status: AccountRegionStatus, reader?: ApiGatewayReader, events?: OutboxEvent[]) => UnitOutcome,
    lease: { name: string; owner: string; ttlMs: number },
  ): Promise<UnitOutcome> {
    const { source, region } = unit;
    const settings = this.settings;

    // 1. List everything once: REST APIs (tags included) and usage plans.
    const [apisResult, plansResult] = await Promise.allSettled([
      reader.listRestApis(),
      reader.listUsagePlans(),
    ]);
    if (apisResult.status === 'rejected') fail(apisResult.reason, 'GetRestApis');
    if (plansResult.status === 'rejected') fail(plansResult.reason, 'GetUsagePlans');
    if (apisResult.status === 'rejected' || plansResult.status === 'rejected')
      return finish(Status.FAILED, reader);
    const restApis = apisResult.value;
    const usagePlans = plansResult.value;

    const previous = await this.deps.catalog.listByAccountRegion(accountId, region);
    const previousById = new Map(previous.map((api) => [api.id, api]));

    // Usage plans by attached stage.
    const plansByStage = new Map<string, UsagePlan[]>();
    const apisWithPlans = new Set<string>();
    for (const plan of usagePlans) {
      for (const stage of plan.apiStages ?? []) {
        if (!stage.apiId || !stage.stage) continue;
        const key = `${stage.apiId}/${stage.stage}`;
        plansByStage.set(key, [...(plansByStage.get(key) ?? []), plan]);
        apisWithPlans.add(stage.apiId);
      }
    }

    // 2. Which REST APIs can be federated: label filter and usage plans first, so the others cost nothing.
    const candidates: Array<{ api: RestApi; labels: string[] }> = [];
    for (const api of restApis) {
      if (!api.id) continue;
      const labels = labelsFromTags(api.tags);
      if (!passesLabelFilter(labels, settings.labels)) {
        counts.skipped++;
        continue;
      }
      if (!settings.acceptApiWithoutUsagePlan && !apisWithPlans.has(api.id)) {
        counts.skipped++;
        continue;
      }
      candidates.push({ api, labels });
    }

    // 3. Stages of each candidate, once each.
    let partial = false;
    const unread = new Set<string>();
    const concurrency = settings.callConcurrency ?? 8;
    const staged = await mapPool(candidates, concurrency, async (candidate) => {
      const restApiId = candidate.api.id as string;
      try {
        return { ...candidate, stages: await reader.getStages(restApiId) };
      } catch (error) {
        partial = true;
        fail(error, `GetStages ${restApiId}`);
        for (const prev of previous) if (prev.source.restApiId === restApiId) unread.add(prev.id);
        return undefined;
      }
    });

    // 4. One federated API per deployed stage with a usage plan (or any deployed stage when accepted).
    interface Pending {
      api: RestApi;
      labels: string[];
      stage: Stage & { stageName: string; deploymentId: string };
      id: string;
      plans: FederatedPlan[];
      prev?: FederatedApi;
      definition?: DefinitionRef;
      needsExport: boolean;
    }
    const pending: Pending[] = [];
    for (const entry of staged) {
      if (!entry) continue;
      for (const stage of entry.stages) {
        if (!stage.stageName || !stage.deploymentId) {
          counts.skipped++;
          continue;
        }
        const restApiId = entry.api.id as string;
        const attached = plansByStage.get(`${restApiId}/${stage.stageName}`) ?? [];
        if (attached.length === 0 && !settings.acceptApiWithoutUsagePlan) {
          counts.skipped++;
          continue;
        }
        const id = federatedApiId(accountId, region, restApiId, stage.stageName);
        const plans = attached.map((plan) => toPlan(id, plan)).sort((a, b) => a.id.localeCompare(b.id));
        const prev = previousById.get(id);
        const needsExport = full || !prev?.definition || prev.source.deploymentId !== stage.deploymentId;
        pending.push({
          api: entry.api,
          labels: entry.labels,
          stage: stage as Pending['stage'],
          id,
          plans,
          prev,
          definition: needsExport ? undefined : prev?.definition,
          needsExport,
        });
      }
    }

    // 5. Export only stages whose deployment changed (or everything with `full`).
    await mapPool(
      pending.filter((p) => p.needsExport),
      concurrency,
      async (p) => {
        const restApiId = p.api.id as string;
        try {
          const bytes = await reader.exportStage(restApiId, p.stage.stageName);
          counts.exported++;
          const stored = await this.deps.definitions.put(bytes);
          p.definition = { format: formatOf(bytes), sha256: stored.sha256, size: stored.size };
        } catch (error) {
          partial = true;
          fail(error, `GetExport ${restApiId}/${p.stage.stageName}`);
          unread.add(p.id);
        }
      },
    );

    const updatedAt = this.now().toISOString();
    const current: FederatedApi[] = [];
    for (const p of pending) {
      if (!p.definition) continue; // export failed: the previous entry stays as it is
      const restApiId = p.api.id as string;
      const endpoint = stageEndpoint(restApiId, region, p.stage.stageName);
      const name = p.api.name ?? restApiId;
      const description = p.api.description || undefined;
      const stageUpdatedAt = p.stage.lastUpdatedDate?.toISOString();
      const fp = fingerprint({
        name,
        description,
        stageName: p.stage.stageName,
        deploymentId: p.stage.deploymentId,
        stageUpdatedAt,
        endpoint,
        labels: p.labels,
        plans: p.plans,
        definitionSha256: p.definition.sha256,
      });
      current.push({
        id: p.id,
        name,
        version: p.stage.stageName,
        ...(description ? { description } : {}),
        source: {
          name: source.name,
          accountId,
          region,
          restApiId,
          stageName: p.stage.stageName,
          deploymentId: p.stage.deploymentId,
        },
        endpoint,
        labels: p.labels,
        plans: p.plans,
        definition: p.definition,
        fingerprint: fp,
        updatedAt: p.prev?.fingerprint === fp ? p.prev.updatedAt : updatedAt,
      });
    }

    // 6. Diff, then outbox first (at least once), then the catalog.
    const diff = diffCatalog(previous, current, { complete: !partial, unread });
    counts.discovered += current.length;
    counts.upserted += diff.upserted.length;
    counts.unchanged += diff.unchanged.length;
    counts.removed += diff.removed.length;
    counts.plansRemoved += diff.removedPlans.length;

    // What each removed plan revokes is computed once (the revocation port); the same subscriptions
    // are listed in `plan.removed`, get a `subscription.revoked` event, and are revoked after the append.
    const revocations = await this.deps.revocations.prepare(
      diff.removedPlans.map(({ api, plan }) => ({
        accountId,
        region,
        usagePlanId: plan.usagePlanId,
        apiId: api.id,
        planId: plan.id,
      })),
    );
    const newEvents: NewEvent[] = diff.upserted.map((api) => ({
      event: EventType.API_UPSERTED,
      payload: api,
    }));
    for (const { plan, subscriptionIds, events: revoked } of revocations) {
      newEvents.push({
        event: EventType.PLAN_REMOVED,
        payload: {
          apiId: plan.apiId,
          planId: plan.planId,
          usagePlanId: plan.usagePlanId,
          subscriptionIds,
        },
      });
      newEvents.push(...revoked);
    }
    for (const api of diff.removed) {
      newEvents.push({ event: EventType.API_REMOVED, payload: { id: api.id, source: api.source } });
    }

    if (newEvents.length > 0) {
      // A run that lost its lease (ran past its TTL) must not publish what the new holder publishes.
      if (!(await this.deps.leases.renew(lease.name, lease.owner, lease.ttlMs))) {
        fail(new BusyError(`lease ${lease.name} lost before publishing`), 'RenewLease');
        return finish(Status.BUSY, reader);
      }
    }
    const events = await this.deps.outbox.append(newEvents);
    // The ledger changes after the events are appended: a crash in between repeats the events on the
    // next run instead of losing them (revocation skips records that are already REVOKED).
    await this.deps.revocations.commit(revocations);
    // Catalog items are independent of each other (the events are already in the outbox): write them
    // concurrently, or a large first run spends seconds after its last API call.
    await mapPool(diff.upserted, CATALOG_WRITE_CONCURRENCY, (api) => this.deps.catalog.putApi(api));
    await mapPool(diff.removed, CATALOG_WRITE_CONCURRENCY, (api) => this.deps.catalog.deleteApi(api.id));

    this.deps.logger?.info('account-region discovered', {
      source: source.name,
      accountId,
      region,
      partial,
      counts,
      deferred: diff.deferred.length,
      apiCalls: reader.calls,
    });
    return finish(partial ? Status.PARTIAL : Status.COMPLETE, reader, events);
  }
}

function toPlan(apiId: string, plan: UsagePlan): FederatedPlan {
  const usagePlanId = plan.id as string;
  const throttle = plan.throttle
    ? compact({ rateLimit: plan.throttle.rateLimit, burstLimit: plan.throttle.burstLimit })
    : undefined;
  const quota = plan.quota
    ? compact({
        limit: plan.quota.limit,
        offset: plan.quota.offset,
        period: plan.quota.period as 'DAY' | 'WEEK' | 'MONTH' | undefined,
      })
    : undefined;
  return {
    id: federatedPlanId(apiId, usagePlanId),
    usagePlanId,
    name: plan.name ?? usagePlanId,
    ...(plan.description ? { description: plan.description } : {}),
    security: 'API_KEY',
    ...(throttle && Object.keys(throttle).length > 0 ? { throttle } : {}),
    ...(quota && Object.keys(quota).length > 0 ? { quota } : {}),
  };
}

/** Drops undefined fields, so stored items, events and fingerprints agree. */
function compact<T extends Record<string, unknown>>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function formatOf(bytes: Uint8Array): DefinitionRef['format'] {
  try {
    return detectDefinitionFormat(JSON.parse(new TextDecoder().decode(bytes)));
  } catch {
    return 'unknown';
  }
}
