/**
 * One account-region of a fanned-out run, resumable across invocations. The same reads, catalog rules,
 * diff and commit as `AccountRegionRun`, cut into steps: a page of each listing still open (REST APIs,
 * usage plans), a chunk of `GetStages`, a chunk of `GetExport`, the commit. Before each step after the
 * first of an invocation the unit asks its budget; without time left it returns its state — listing
 * positions, what was read, exports done (their definitions are already stored), errors, API calls —
 * which the caller checkpoints in the ledger and hands to the next invocation with the lease.
 * Everything a step reads is kept, nothing is read twice, and the last step builds exactly what an
 * uninterrupted run builds, so the catalog and the events are the same however often it was cut.
 */
import type { RestApi, Stage, UsagePlan } from '@aws-sdk/client-api-gateway';
import type { RateLimiter } from '../aws/rate-limiter.js';
import { ErrorCode, toFederationError } from '../errors.js';
import type { OutboxEvent } from '../ledger/outbox.js';
import type { DefinitionRef, DefinitionUnavailable, FederatedApi } from '../model.js';
import { mapPool } from '../pool.js';
import { type AccountRegionDeps, type AccountRegionSettings, discoveryLeaseName } from './account-region.js';
import {
  type Candidate,
  federatedApi,
  formatOf,
  indexPlans,
  planStages,
  type StagePlan,
  selectCandidates,
} from './catalog.js';
import { commitDiscovery } from './commit.js';
import { countDiff, diffCatalog } from './diff.js';
import type { UnitSpec } from './organization.js';
import { ApiGatewayReader, exportRefusal, PAGE_LIMIT, refusedDefinition } from './reader.js';
import {
  AccountRegionStatus,
  type AccountRegionSummary,
  addCalls,
  type DiscoveryCounts,
  type DiscoveryError,
  emptyCounts,
} from './summary.js';

/** Whether an invocation may take another step. */
export interface StepBudget {
  more(): boolean;
}

/** The Lambda budget: another step while more than `reserveMs` of the invocation remain. */
export function timeBudget(remainingMs: number, reserveMs: number, now = () => Date.now()): StepBudget {
  const end = now() + remainingMs;
  return { more: () => end - now() > reserveMs };
}

/** At most `steps` steps per invocation (tests: 1 cuts the unit after every step). */
export function stepBudget(steps: number): StepBudget {
  let taken = 0;
  return { more: () => ++taken < steps };
}

/** What a unit keeps between invocations (JSON). */
export interface UnitState {
  readonly v: 1;
  readonly startedAtMs: number;
  apis: { done: boolean; position?: string; items: SlimRestApi[] };
  plans: { done: boolean; position?: string; items: UsagePlan[] };
  /** Stages read, by REST API id. */
  stages: Record<string, SlimStage[]>;
  /** REST APIs whose GetStages failed after retries (their entries stay as they are). */
  stagesFailed: string[];
  /** Definitions of the exports done, by federated API id. */
  exports: Record<string, DefinitionRef | DefinitionUnavailable>;
  /** Federated APIs whose export failed after retries. */
  exportsFailed: string[];
  exported: number;
  exportRefused: number;
  apiCalls: Record<string, number>;
  throttles: number;
  errors: DiscoveryError[];
  steps: number;
}

type SlimRestApi = Pick<RestApi, 'id' | 'name' | 'description' | 'tags'>;
type SlimStage = { stageName?: string; deploymentId?: string; lastUpdatedDate?: string };

export function newUnitState(nowMs: number): UnitState {
  return {
    v: 1,
    startedAtMs: nowMs,
    apis: { done: false, items: [] },
    plans: { done: false, items: [] },
    stages: {},
    stagesFailed: [],
    exports: {},
    exportsFailed: [],
    exported: 0,
    exportRefused: 0,
    apiCalls: {},
    throttles: 0,
    errors: [],
    steps: 0,
  };
}

/** A unit reads and commits with what an account-region run uses. */
export type UnitDeps = AccountRegionDeps;

export interface UnitSettings extends AccountRegionSettings {
  /** Page size of the listings (API Gateway's largest, 500; tests page smaller). */
  readonly pageLimit?: number;
}

/** How an invocation of a unit ended. */
export type UnitStep =
  /** Out of time: checkpoint this state and continue in the next invocation. */
  | { readonly kind: 'handOn'; readonly state: UnitState }
  /** A listing failed (retryable): the message should be delivered again; the state is the progress. */
  | { readonly kind: 'retry'; readonly state: UnitState; readonly error: DiscoveryError }
  /** The unit ended. */
  | {
      readonly kind: 'ended';
      readonly summary: AccountRegionSummary;
      readonly errors: DiscoveryError[];
      readonly events: OutboxEvent[];
      /** The role could not be assumed (access denied before any answer). */
      readonly accessDenied?: boolean;
    };

/** One invocation's work on a unit: acquire (or keep) the lease, take steps, commit or hand on. */
export class ResumableUnit {
  private reader!: ApiGatewayReader;
  private previous: FederatedApi[] | undefined;
  /**
   * The candidates, and the stage plans once every candidate's stages are read: fixed from then on
   * within an invocation, so each step does not select and plan every API of the account-region again
   * (a step takes `callConcurrency` calls: recomputing them per step was quadratic in the APIs).
   */
  private candidatesListed: Candidate[] | undefined;
  private plansOfReadStages: StagePlan[] | undefined;

  constructor(
    private readonly deps: UnitDeps,
    private readonly settings: UnitSettings,
    private readonly unit: {
      readonly spec: UnitSpec;
      readonly runId: string;
      readonly full: boolean;
      /** The lease lasts this long from now: this invocation plus the hand-on to the next. */
      readonly leaseTtlMs: number;
      readonly limiter: RateLimiter;
      readonly budget: StepBudget;
    },
    private readonly state: UnitState,
  ) {}

  private get lease() {
    const { spec, runId, leaseTtlMs } = this.unit;
    return { name: discoveryLeaseName(spec.accountId, spec.region), owner: runId, ttlMs: leaseTtlMs };
  }

  async run(): Promise<UnitStep> {
    const { spec } = this.unit;
    const lease = this.lease;
    // The run holds the account-region's lease from its first step to its commit, across invocations.
    if (!(await this.deps.leases.acquire(lease.name, lease.owner, lease.ttlMs))) {
      this.deps.logger?.info('account-region busy: another run holds its lease', {
        accountId: spec.accountId,
        region: spec.region,
      });
      return this.ended(AccountRegionStatus.BUSY);
    }
    this.reader = new ApiGatewayReader(
      this.deps.apiGateway({ region: spec.region, accountId: spec.accountId, roleArn: spec.roleArn }),
      this.unit.limiter,
      this.settings.retry,
    );
    let outcome: UnitStep;
    try {
      outcome = await this.steps();
    } catch (error) {
      this.absorbCalls();
      throw error;
    }
    if (outcome.kind !== 'handOn') {
      // Ended (or to be retried from the start of a listing): the lease is given up.
      await this.deps.leases
        .release(lease.name, lease.owner)
        .catch((error) => this.fail(error, 'ReleaseLease'));
    }
    return outcome;
  }

  private async steps(): Promise<UnitStep> {
    const { state } = this;
    let first = true;
    for (;;) {
      const step = await this.nextStep();
      if (step === 'commit') break;
      if (!first && !this.unit.budget.more()) {
        this.absorbCalls();
        return { kind: 'handOn', state };
      }
      first = false;
      state.steps++;
      if (step === 'list') {
        const failure = await this.listStep();
        if (failure) {
          this.absorbCalls();
          if (failure.code === ErrorCode.AWS_ACCESS_DENIED && state.steps === 1) {
            return { ...this.ended(AccountRegionStatus.FAILED), accessDenied: true };
          }
          return { kind: 'retry', state, error: failure };
        }
      } else if (step === 'stages') {
        await this.stagesStep();
      } else {
        await this.exportsStep();
      }
    }
    return this.commit();
  }

  /** What is left: a listing page, GetStages of a chunk of candidates, exports of a chunk, the commit. */
  private async nextStep(): Promise<'list' | 'stages' | 'exports' | 'commit'> {
    const { state } = this;
    if (!state.apis.done || !state.plans.done) return 'list';
    if (this.pendingCandidates().length > 0) return 'stages';
    return (await this.pendingExports()).length > 0 ? 'exports' : 'commit';
  }

  private async listStep(): Promise<DiscoveryError | undefined> {
    const { state } = this;
    const limit = this.settings.pageLimit ?? PAGE_LIMIT;
    const [apis, plans] = await Promise.allSettled([
      state.apis.done ? undefined : this.reader.restApisPage(state.apis.position, limit),
      state.plans.done ? undefined : this.reader.usagePlansPage(state.plans.position, limit),
    ]);
    if (apis.status === 'fulfilled' && apis.value) {
      state.apis.items.push(
        ...apis.value.items.map((a) =>
          compact({ id: a.id, name: a.name, description: a.description, tags: a.tags }),
        ),
      );
      state.apis.position = apis.value.position;
      state.apis.done = !apis.value.position;
    }
    if (plans.status === 'fulfilled' && plans.value) {
      state.plans.items.push(...plans.value.items);
      state.plans.position = plans.value.position;
      state.plans.done = !plans.value.position;
    }
    let failure: DiscoveryError | undefined;
    if (apis.status === 'rejected') failure = this.fail(apis.reason, 'GetRestApis');
    if (plans.status === 'rejected') failure = this.fail(plans.reason, 'GetUsagePlans');
    return failure;
  }

  /** Candidates (label filter, usage plans) whose stages are neither read nor failed. */
  private pendingCandidates(): Candidate[] {
    const { state } = this;
    const failed = new Set(state.stagesFailed);
    return this.candidates().filter((c) => !(c.api.id in state.stages) && !failed.has(c.api.id));
  }

  /** The candidates; with `counts`, selected again to count what the selection left out. */
  private candidates(counts?: DiscoveryCounts): Candidate[] {
    const select = () =>
      selectCandidates(
        this.restApis(),
        indexPlans(this.state.plans.items),
        this.settings,
        counts ?? emptyCounts(),
      );
    if (counts || !this.state.apis.done || !this.state.plans.done) return select();
    this.candidatesListed ??= select();
    return this.candidatesListed;
  }

  private restApis(): RestApi[] {
    return this.state.apis.items as RestApi[];
  }

  private async stagesStep(): Promise<void> {
    const chunk = this.pendingCandidates().slice(0, this.settings.callConcurrency);
    await mapPool(chunk, this.settings.callConcurrency, async (candidate) => {
      try {
        const stages = await this.reader.getStages(candidate.api.id);
        this.state.stages[candidate.api.id] = stages.map((s) =>
          compact({
            stageName: s.stageName,
            deploymentId: s.deploymentId,
            lastUpdatedDate: s.lastUpdatedDate?.toISOString(),
          }),
        );
      } catch (error) {
        this.fail(error, `GetStages ${candidate.api.id}`);
        this.state.stagesFailed.push(candidate.api.id);
      }
    });
  }

  /** The deployed stages to federate (what `planStages` makes of the stages read). */
  private async stagePlans(counts = emptyCounts()) {
    const { spec, full } = this.unit;
    const previous = await this.previousCatalog();
    const read = this.candidates(counts)
      .filter((c) => c.api.id in this.state.stages)
      .map((c) => ({
        ...c,
        stages: (this.state.stages[c.api.id] ?? []).map(
          (s): Stage => ({
            stageName: s.stageName,
            deploymentId: s.deploymentId,
            lastUpdatedDate: s.lastUpdatedDate ? new Date(s.lastUpdatedDate) : undefined,
          }),
        ),
      }));
    return planStages(
      read,
      indexPlans(this.state.plans.items),
      this.settings,
      {
        accountId: spec.accountId,
        region: spec.region,
        full,
        previousById: new Map(previous.map((api) => [api.id, api])),
      },
      counts,
    );
  }

  private async pendingExports() {
    const { state } = this;
    if (!this.plansOfReadStages) {
      const plans = await this.stagePlans();
      if (this.pendingCandidates().length > 0) return plans; // stages still to read: not final yet
      this.plansOfReadStages = plans;
    }
    const failed = new Set(state.exportsFailed);
    return this.plansOfReadStages.filter(
      (p) => p.needsExport && !(p.id in state.exports) && !failed.has(p.id),
    );
  }

  private async exportsStep(): Promise<void> {
    const chunk = (await this.pendingExports()).slice(0, this.settings.callConcurrency);
    const { state } = this;
    await mapPool(chunk, this.settings.callConcurrency, async (p) => {
      try {
        const bytes = await this.reader.exportStage(p.api.id, p.stage.stageName);
        state.exported++;
        const stored = await this.deps.definitions.put(bytes);
        state.exports[p.id] = { format: formatOf(bytes), sha256: stored.sha256, size: stored.size };
      } catch (error) {
        const refusal = exportRefusal(error);
        if (refusal) {
          state.exportRefused++;
          state.exports[p.id] = refusedDefinition(refusal, p.stage.deploymentId);
          return;
        }
        this.fail(error, `GetExport ${p.api.id}/${p.stage.stageName}`);
        state.exportsFailed.push(p.id);
      }
    });
  }

  private async commit(): Promise<UnitStep> {
    const { spec } = this.unit;
    const { state } = this;
    const counts = emptyCounts();
    const stagePlans = await this.stagePlans(counts);
    const previous = await this.previousCatalog();
    const unread = new Set<string>();
    for (const id of state.stagesFailed) {
      for (const prev of previous) if (prev.source.restApiId === id) unread.add(prev.id);
    }
    for (const id of state.exportsFailed) unread.add(id);
    const partial = state.stagesFailed.length > 0 || state.exportsFailed.length > 0;
    counts.exported = state.exported;
    counts.exportRefused = state.exportRefused;
    const now = this.deps.now().toISOString();
    const current: FederatedApi[] = [];
    for (const p of stagePlans) {
      const definition = p.needsExport
        ? state.exports[p.id]
        : (p.prev?.definition ?? p.prev?.definitionUnavailable);
      if (!definition) continue; // export failed: the previous entry stays as it is
      current.push(
        federatedApi(p, definition, {
          sourceName: spec.source,
          accountId: spec.accountId,
          region: spec.region,
          now,
        }),
      );
    }
    const diff = diffCatalog(previous, current, { complete: !partial, unread });
    countDiff(counts, current.length, diff);
    const committed = await commitDiscovery(this.deps, {
      accountId: spec.accountId,
      region: spec.region,
      diff,
      lease: this.lease,
    });
    this.absorbCalls();
    if ('leaseLost' in committed) {
      this.fail(committed.leaseLost, 'RenewLease');
      return this.ended(AccountRegionStatus.BUSY, counts);
    }
    return this.ended(
      partial ? AccountRegionStatus.PARTIAL : AccountRegionStatus.COMPLETE,
      counts,
      committed.events,
    );
  }

  private async previousCatalog(): Promise<FederatedApi[]> {
    this.previous ??= await this.deps.catalog.listByAccountRegion(
      this.unit.spec.accountId,
      this.unit.spec.region,
    );
    return this.previous;
  }

  /** This invocation's API calls, added to the state's. */
  private absorbCalls(): void {
    if (!this.reader) return;
    addCalls(this.state.apiCalls, this.reader.calls);
    this.state.throttles += this.reader.throttles;
    for (const key of Object.keys(this.reader.calls)) delete this.reader.calls[key];
    this.reader.throttles = 0;
  }

  private ended(
    status: AccountRegionStatus,
    counts = emptyCounts(),
    events: OutboxEvent[] = [],
  ): Extract<UnitStep, { kind: 'ended' }> {
    const { spec } = this.unit;
    return {
      kind: 'ended',
      summary: {
        source: spec.source,
        accountId: spec.accountId,
        region: spec.region,
        status,
        counts,
        apiCalls: { ...this.state.apiCalls },
        throttles: this.state.throttles,
        durationMs: Math.max(0, this.deps.now().getTime() - this.state.startedAtMs),
      },
      errors: this.state.errors,
      events,
    };
  }

  private fail(error: unknown, operation: string): DiscoveryError {
    const typed = toFederationError(error, operation);
    const { spec } = this.unit;
    const entry: DiscoveryError = {
      source: spec.source,
      accountId: spec.accountId,
      region: spec.region,
      operation,
      code: typed.code,
      message: typed.message,
    };
    this.state.errors.push(entry);
    this.deps.logger?.warn('discovery call failed', {
      source: spec.source,
      accountId: spec.accountId,
      region: spec.region,
      operation,
      error: typed.toJSON(),
    });
    return entry;
  }
}

/** Drops undefined fields (JSON keeps the checkpoint what the object was). */
function compact<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
