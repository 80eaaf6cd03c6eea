/**
 * One account-region's discovery run, as an object: take the lease, read (REST APIs and usage plans
 * once, stages of the candidates, exports of changed deployments), build the catalog (`catalog.ts`,
 * pure), diff it with the ledger's, commit (`commit.ts`), release the lease. Its outcome is the
 * account-region's summary, errors and appended events.
 */
import type { APIGatewayClient, RestApi, Stage, UsagePlan } from '@aws-sdk/client-api-gateway';
import type { AwsTarget } from '../aws/clients.js';
import type { RateLimiter } from '../aws/rate-limiter.js';
import type { Source } from '../config/schema.js';
import { toFederationError } from '../errors.js';
import type { CatalogRepository } from '../ledger/catalog.js';
import type { DefinitionStore } from '../ledger/definitions.js';
import type { LeaseRepository } from '../ledger/lease.js';
import type { Outbox, OutboxEvent } from '../ledger/outbox.js';
import type { Logger } from '../logger.js';
import type { DefinitionRef, DefinitionUnavailable, FederatedApi } from '../model.js';
import { mapPool } from '../pool.js';
import type { PlanRevocations } from '../ports/revocations.js';
import {
  type Candidate,
  type CatalogRules,
  federatedApi,
  formatOf,
  indexPlans,
  planStages,
  selectCandidates,
  toPlan,
} from './catalog.js';
import type { ChangeTarget } from './change-events.js';
import { commitDiscovery } from './commit.js';
import { countDiff, diffCatalog } from './diff.js';
import { ApiGatewayReader, exportRefusal, type ReaderRetryOptions, refusedDefinition } from './reader.js';
import {
  AccountRegionStatus,
  type AccountRegionSummary,
  type DiscoveryError,
  emptyCounts,
} from './summary.js';

/** What an account-region run needs from the world (the engine hands it its own). */
export interface AccountRegionDeps {
  readonly apiGateway: (target: AwsTarget) => APIGatewayClient;
  readonly catalog: CatalogRepository;
  readonly outbox: Outbox;
  readonly definitions: DefinitionStore;
  readonly leases: LeaseRepository;
  readonly revocations: PlanRevocations;
  readonly logger?: Logger;
  readonly now: () => Date;
}

export interface AccountRegionSettings extends CatalogRules {
  /** GetStages / GetExport calls in flight (the bucket sets the pace). */
  readonly callConcurrency: number;
  readonly retry?: ReaderRetryOptions;
}

export interface AccountRegionOutcome {
  readonly summary: AccountRegionSummary;
  readonly errors: DiscoveryError[];
  readonly events: OutboxEvent[];
}

/** Lease name of an account-region: one discovery at a time per account-region. */
export function discoveryLeaseName(accountId: string, region: string): string {
  return `discovery#${accountId}#${region}`;
}

/** The account of a role ARN (`arn:aws:iam::<account>:role/...`). */
function accountOfRole(roleArn: string | undefined): string | undefined {
  return roleArn ? /^arn:[^:]+:iam::(\d{12}):/.exec(roleArn)?.[1] : undefined;
}

export class AccountRegionRun {
  private readonly t0 = performance.now();
  private readonly errors: DiscoveryError[] = [];
  private readonly counts = emptyCounts();
  private accountId: string | undefined;
  private reader: ApiGatewayReader | undefined;

  constructor(
    private readonly deps: AccountRegionDeps,
    private readonly settings: AccountRegionSettings,
    private readonly unit: {
      readonly source: Source;
      readonly region: string;
      readonly runId: string;
      readonly full: boolean;
      readonly leaseTtlMs: number;
      /** The account of the function's own credentials, for sources without one. */
      readonly callerAccountId: () => Promise<string>;
      /** The token bucket of an account-region (shared by every run of the engine). */
      readonly limiter: (accountId: string, region: string) => RateLimiter;
      /** A targeted run's targets: this account-region re-reads only its target's REST APIs. */
      readonly targets?: readonly ChangeTarget[];
    },
  ) {
    this.accountId = unit.source.accountId ?? accountOfRole(unit.source.roleArn);
  }

  /**
   * Runs the account-region: never throws for AWS failures (they are the outcome's errors). In a
   * targeted run, `undefined` when no target is in this account-region.
   */
  async run(): Promise<AccountRegionOutcome | undefined> {
    const { source, region, runId, leaseTtlMs } = this.unit;
    let accountId: string;
    try {
      accountId = this.accountId ?? (await this.unit.callerAccountId());
      this.accountId = accountId;
    } catch (error) {
      this.fail(error, 'GetCallerIdentity');
      return this.finish(AccountRegionStatus.FAILED);
    }
    let scope: ChangeTarget | undefined;
    if (this.unit.targets) {
      scope = this.unit.targets.find((t) => t.accountId === accountId && t.region === region);
      if (!scope) return undefined; // no change in this account-region
    }
    // Targeted and full runs of an account-region share its lease: they never race.
    const lease = { name: discoveryLeaseName(accountId, region), owner: runId, ttlMs: leaseTtlMs };
    if (!(await this.deps.leases.acquire(lease.name, lease.owner, lease.ttlMs))) {
      this.deps.logger?.info('account-region busy: another run holds its lease', { accountId, region });
      return this.finish(AccountRegionStatus.BUSY);
    }
    this.reader = new ApiGatewayReader(
      this.deps.apiGateway({ region, accountId: source.accountId, roleArn: source.roleArn }),
      this.unit.limiter(accountId, region),
      this.settings.retry,
    );
    try {
      return await this.discover(accountId, lease, this.reader, scope);
    } finally {
      await this.deps.leases
        .release(lease.name, lease.owner)
        .catch((error) => this.fail(error, 'ReleaseLease'));
    }
  }

  private async discover(
    accountId: string,
    lease: { name: string; owner: string; ttlMs: number },
    reader: ApiGatewayReader,
    scope?: ChangeTarget,
  ): Promise<AccountRegionOutcome> {
    const { source, region, full } = this.unit;
    const { settings, counts } = this;
    let partial = false;
    const unread = new Set<string>();

    // 1. List everything once: REST APIs (tags included) and usage plans; a targeted run reads only
    //    its REST APIs and diffs only their entries.
    const reads = scope
      ? await this.readScope(scope, accountId, reader, unread)
      : await this.readAll(accountId, reader);
    if (!reads) return this.finish(AccountRegionStatus.FAILED);
    if (reads.partial) partial = true;
    const { previous } = reads;
    const previousById = new Map(previous.map((api) => [api.id, api]));
    const plans = indexPlans(reads.usagePlans);

    // 2. Which REST APIs can be federated (label filter and usage plans first: the others cost nothing).
    const candidates = selectCandidates(reads.restApis, plans, settings, counts);

    // 3. Stages of each candidate, once each.
    const staged = await mapPool(candidates, settings.callConcurrency, async (candidate) => {
      try {
        return { ...candidate, stages: await reader.getStages(candidate.api.id) };
      } catch (error) {
        partial = true;
        this.fail(error, `GetStages ${candidate.api.id}`);
        for (const prev of previous) if (prev.source.restApiId === candidate.api.id) unread.add(prev.id);
        return undefined;
      }
    });
    const read = staged.filter((s): s is Candidate & { stages: Stage[] } => s !== undefined);

    // 4. One federated API per deployed stage with a usage plan (or any deployed stage when accepted).
    const stagePlans = planStages(read, plans, settings, { accountId, region, full, previousById }, counts);

    // 5. Export only stages whose deployment changed (or everything with `full`).
    const definitions = new Map<string, DefinitionRef | DefinitionUnavailable>();
    for (const p of stagePlans) {
      const kept = p.needsExport ? undefined : (p.prev?.definition ?? p.prev?.definitionUnavailable);
      if (kept) definitions.set(p.id, kept);
    }
    await mapPool(
      stagePlans.filter((p) => p.needsExport),
      settings.callConcurrency,
      async (p) => {
        try {
          const bytes = await reader.exportStage(p.api.id, p.stage.stageName);
          counts.exported++;
          const stored = await this.deps.definitions.put(bytes);
          definitions.set(p.id, { format: formatOf(bytes), sha256: stored.sha256, size: stored.size });
        } catch (error) {
          const refusal = exportRefusal(error);
          if (refusal) {
            // API Gateway will never export this deployment: a per-API outcome, not a partial read.
            counts.exportRefused++;
            definitions.set(p.id, refusedDefinition(refusal, p.stage.deploymentId));
            this.deps.logger?.warn('export refused; federated without a definition', {
              restApiId: p.api.id,
              stageName: p.stage.stageName,
              error: refusal.name,
            });
            return;
          }
          partial = true;
          this.fail(error, `GetExport ${p.api.id}/${p.stage.stageName}`);
          unread.add(p.id);
        }
      },
    );

    const now = this.deps.now().toISOString();
    const current: FederatedApi[] = [];
    for (const p of stagePlans) {
      const definition = definitions.get(p.id);
      if (!definition) continue; // export failed: the previous entry stays as it is
      current.push(federatedApi(p, definition, { sourceName: source.name, accountId, region, now }));
    }

    // 6. Diff, then commit: lease renew → outbox → revocations → catalog.
    const diff = diffCatalog(previous, current, { complete: !partial, unread });
    countDiff(counts, current.length, diff);

    const committed = await commitDiscovery(this.deps, { accountId, region, diff, lease });
    if ('leaseLost' in committed) {
      this.fail(committed.leaseLost, 'RenewLease');
      return this.finish(AccountRegionStatus.BUSY);
    }
    this.deps.logger?.info('account-region discovered', {
      source: source.name,
      accountId,
      region,
      partial,
      counts,
      deferred: diff.deferred.length,
      apiCalls: reader.calls,
    });
    return this.finish(
      partial ? AccountRegionStatus.PARTIAL : AccountRegionStatus.COMPLETE,
      committed.events,
    );
  }

  /** A full run's reads: every REST API and usage plan, and the account-region's catalog. */
  private async readAll(accountId: string, reader: ApiGatewayReader): Promise<ScopeRead | undefined> {
    const [apisResult, plansResult] = await Promise.allSettled([
      reader.listRestApis(),
      reader.listUsagePlans(),
    ]);
    if (apisResult.status === 'rejected') this.fail(apisResult.reason, 'GetRestApis');
    if (plansResult.status === 'rejected') this.fail(plansResult.reason, 'GetUsagePlans');
    if (apisResult.status === 'rejected' || plansResult.status === 'rejected') return undefined;
    const previous = await this.deps.catalog.listByAccountRegion(accountId, this.unit.region);
    return { restApis: apisResult.value, usagePlans: plansResult.value, previous, partial: false };
  }

  /**
   * A targeted run's reads: the usage plans (one list), then `GetRestApi` of each REST API of the
   * scope (with `usagePlans`, also of each catalogued API whose plans differ from the new list), and
   * the catalog entries of those REST APIs only. A REST API API Gateway reports as not found is
   * confirmed gone (its entries are removed); one that could not be read keeps its entries.
   */
  private async readScope(
    scope: ChangeTarget,
    accountId: string,
    reader: ApiGatewayReader,
    unread: Set<string>,
  ): Promise<ScopeRead | undefined> {
    let usagePlans: UsagePlan[];
    try {
      usagePlans = await reader.listUsagePlans();
    } catch (error) {
      this.fail(error, 'GetUsagePlans');
      return undefined;
    }
    const catalog = await this.deps.catalog.listByAccountRegion(accountId, this.unit.region);
    const ids = new Set(scope.restApiIds);
    if (scope.usagePlans) {
      for (const id of restApisWithChangedPlans(catalog, usagePlans)) ids.add(id);
    }
    const previous = catalog.filter((api) => ids.has(api.source.restApiId));
    let partial = false;
    const restApis: RestApi[] = [];
    await mapPool([...ids], this.settings.callConcurrency, async (restApiId) => {
      try {
        const api = await reader.getRestApi(restApiId);
        if (api) restApis.push(api);
      } catch (error) {
        partial = true;
        this.fail(error, `GetRestApi ${restApiId}`);
        for (const prev of previous) if (prev.source.restApiId === restApiId) unread.add(prev.id);
      }
    });
    return { restApis, usagePlans, previous, partial };
  }

  private finish(status: AccountRegionStatus, events: OutboxEvent[] = []): AccountRegionOutcome {
    return {
      summary: {
        source: this.unit.source.name,
        accountId: this.accountId,
        region: this.unit.region,
        status,
        counts: this.counts,
        apiCalls: { ...(this.reader?.calls ?? {}) },
        throttles: this.reader?.throttles ?? 0,
        durationMs: Math.round(performance.now() - this.t0),
      },
      errors: this.errors,
      events,
    };
  }

  private fail(error: unknown, operation?: string): void {
    const typed = toFederationError(error, operation ?? 'discovery');
    const { source, region } = this.unit;
    const accountId = this.accountId;
    this.errors.push({
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
  }
}

interface ScopeRead {
  readonly restApis: RestApi[];
  readonly usagePlans: UsagePlan[];
  /** The catalog entries the run may update or remove. */
  readonly previous: FederatedApi[];
  readonly partial: boolean;
}

/**
 * REST APIs of catalogued entries whose plans (attachments, name, description, throttle, quota)
 * differ from what the usage plans say now. New attachments of stages not in the catalog are named
 * by the event itself (`apiStages` of the call); the reconciliation run catches anything else.
 */
export function restApisWithChangedPlans(
  catalog: readonly FederatedApi[],
  usagePlans: readonly UsagePlan[],
): string[] {
  const { byStage } = indexPlans(usagePlans);
  const changed = new Set<string>();
  for (const api of catalog) {
    const now = (byStage.get(`${api.source.restApiId}/${api.source.stageName}`) ?? [])
      .map((plan) => toPlan(api.id, plan))
      .sort((a, b) => a.id.localeCompare(b.id));
    if (stableJson(now) !== stableJson(api.plans)) changed.add(api.source.restApiId);
  }
  return [...changed];
}

/** JSON with sorted keys: items read back from DynamoDB need not keep their key order. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : v,
  );
}
