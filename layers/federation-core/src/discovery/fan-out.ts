/**
 * Fan-out: a discovery run as one unit of work per account-region, executed by SQS and Lambda.
 *
 * - The **coordinator** (`startFanOutRun`: a scheduled event, `{}`, `{ "full": true }`, the relay's
 *   `discover`) lists the run's account-regions (organisation scopes included), writes the run record
 *   and one unit record each (`run-ledger.ts`), sends one message per account-region to the fan-out
 *   queue and a deadline message, and returns the run id.
 * - The discovery function consumes the queue (event source mapping: batch size 1, maximum
 *   concurrency, partial batch responses, redrive to the dead-letter queue after `maxReceiveCount`).
 *   Each message is one invocation's work on a unit (`unit.ts`): claimed, run within the invocation's
 *   budget, then ended (its outcome added to the run record in one transaction) or handed on with its
 *   checkpoint to a continuation message. A listing that fails is delivered again by SQS; on its last
 *   delivery the unit ends as failed (counted) and the message goes on to the dead-letter queue.
 * - The unit that ends last completes the run (a conditional write decides), or the deadline message
 *   does: one `discovery.completed`, the reply to `replyTo`.
 *
 * Retries, concurrency and dead-lettering are SQS's and Lambda's; nothing here schedules anything.
 */
import { randomUUID } from 'node:crypto';
import type { WorkQueue } from '../aws/queue.js';
import type { RateLimiterRegistry } from '../aws/rate-limiter.js';
import { effectiveSources } from '../config/load.js';
import type { Source } from '../config/schema.js';
import { toFederationError, ValidationError } from '../errors.js';
import type { Outbox } from '../ledger/outbox.js';
import type { Logger } from '../logger.js';
import { EventType } from '../model.js';
import type { RelayPublisher } from '../publishing/ports.js';
import { publishAppended } from '../publishing/publish.js';
import { expandUnits, type UnitExpansionDeps, type UnitSpec } from './organization.js';
import type { ReaderRetryOptions } from './reader.js';
import {
  type FanOutRunLedger,
  type FanOutRunRecord,
  outcomeErrors,
  type ReplyTo,
  RunStatus,
} from './run-ledger.js';
import {
  AccountRegionStatus,
  type AccountRegionSummary,
  type BoundedErrors,
  boundAccountRegions,
  boundErrors,
  boundWithoutRole,
  type DiscoveryError,
  type DiscoverySummary,
  emptyCounts,
  joinErrors,
  type OrganizationSummary,
} from './summary.js';
import {
  newUnitState,
  ResumableUnit,
  type StepBudget,
  timeBudget,
  type UnitDeps,
  type UnitSettings,
  type UnitState,
} from './unit.js';

export const FAN_OUT_UNIT = 'discovery.unit';
export const FAN_OUT_DEADLINE = 'discovery.deadline';

/** A fan-out queue message: a unit's continuation, or the run's deadline check. */
export type FanOutMessage =
  | {
      readonly kind: typeof FAN_OUT_UNIT;
      readonly runId: string;
      readonly unit: string;
      readonly cont: number;
    }
  | { readonly kind: typeof FAN_OUT_DEADLINE; readonly runId: string };

export interface FanOutSettings extends UnitSettings {
  readonly sources: readonly Source[];
  readonly defaultRegion: string;
  /** Deliveries before the dead-letter queue (the queue's redrive policy says the same). */
  readonly maxReceiveCount: number;
  /** A run completes as partial this long after it started. */
  readonly deadlineMs: number;
  /** How long the coordinator of an on-demand run waits for it before answering that it continues. */
  readonly waitMs: number;
  /** Kept back from an invocation's remaining time for the checkpoint and hand-on. Default 60 s. */
  readonly reserveMs?: number;
  /** The lease outlasts an invocation by this much, for the hand-on to the next. Default 5 min. */
  readonly handOnMs?: number;
  readonly retry?: ReaderRetryOptions;
}

export interface FanOutDeps {
  readonly ledger: FanOutRunLedger;
  readonly queue: WorkQueue;
  readonly unit: UnitDeps;
  readonly expansion: UnitExpansionDeps;
  readonly outbox: Pick<Outbox, 'append' | 'appendedOnceAt'>;
  readonly publisher: RelayPublisher;
  readonly limiters: RateLimiterRegistry;
  readonly settings: FanOutSettings;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** The budget of one invocation (tests cut units with `stepBudget`). Default: the Lambda's time. */
  readonly budget?: (remainingMs: number | undefined) => StepBudget;
  readonly now?: () => Date;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** What a run summary adds when it was fanned out. */
export interface FanOutSummary extends DiscoverySummary {
  readonly fanOut: {
    readonly units: number;
    readonly unitsEnded: number;
    readonly invocations: number;
    readonly unitStatus: Record<string, number>;
    /** Completed by its deadline: the units not ended count as failed. */
    readonly deadlineReached: boolean;
  };
  /**
   * Organisation scopes: accounts listed, and those the role could not be assumed in (at most
   * `SUMMARY_WITHOUT_ROLE_MAX` listed, all counted).
   */
  readonly organization?: OrganizationSummary;
}

/** The answer of a coordinator whose run is still going. */
export interface FanOutRunStarted {
  readonly runId: string;
  readonly status: 'running';
  readonly units: number;
  readonly unitsEnded: number;
  readonly message: string;
}

const DEFAULT_RESERVE_MS = 60_000;
const DEFAULT_HAND_ON_MS = 5 * 60_000;
/** SQS's longest message delay. */
const MAX_DELAY_SECONDS = 900;

export interface StartRunRequest {
  readonly sources?: readonly string[];
  readonly full?: boolean;
  readonly replyTo?: ReplyTo;
  readonly runId?: string;
}

/** The coordinator: lists the units, records the run, enqueues one message per unit and the deadline. */
export async function startFanOutRun(
  deps: FanOutDeps,
  request: StartRunRequest = {},
): Promise<FanOutRunRecord> {
  const now = (deps.now ?? (() => new Date()))();
  const sources = selectSources(deps.settings, request.sources);
  const { units, organizationAccounts } = await expandUnits(sources, deps.expansion);
  const runId = request.runId ?? randomUUID();
  const { settings } = deps;
  await deps.ledger.createRun(
    {
      runId,
      startedAt: now.toISOString(),
      startedAtMs: now.getTime(),
      deadlineAtMs: now.getTime() + settings.deadlineMs,
      full: request.full ?? false,
      sources: sources.map((s) => s.name),
      unitsTotal: units.length,
      counts: emptyCounts(),
      ...(sources.some((s) => s.organization) ? { organizationAccounts } : {}),
      ...(request.replyTo ? { replyTo: request.replyTo } : {}),
    },
    units,
  );
  await deps.queue.send([
    ...units.map((u) => ({ body: JSON.stringify(unitMessage(runId, u.key, 0)) })),
    {
      body: JSON.stringify({ kind: FAN_OUT_DEADLINE, runId } satisfies FanOutMessage),
      delaySeconds: Math.min(MAX_DELAY_SECONDS, Math.ceil(settings.deadlineMs / 1000)),
    },
  ]);
  deps.logger?.info('discovery run fanned out', { runId, units: units.length, organizationAccounts });
  const run = (await deps.ledger.getRun(runId)) as FanOutRunRecord;
  if (units.length === 0) await completeRun(deps, run, 'lastUnit');
  return run;
}

/**
 * Starts a run and waits up to `waitMs` for it: its summary when it completed, else that it continues
 * (with its run id).
 */
export async function runFanOut(
  deps: FanOutDeps,
  request: StartRunRequest,
  waitMs: number,
): Promise<FanOutSummary | FanOutRunStarted> {
  const started = await startFanOutRun(deps, request);
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const until = Date.now() + waitMs;
  let run: FanOutRunRecord | undefined = started;
  for (;;) {
    run = await deps.ledger.getRun(started.runId);
    if (run?.status === RunStatus.COMPLETED) return runSummary(deps, run);
    if (Date.now() >= until) break;
    await sleep(Math.min(1000, Math.max(0, until - Date.now())));
  }
  return {
    runId: started.runId,
    status: 'running',
    units: started.unitsTotal,
    unitsEnded: run?.unitsDone ?? 0,
    message: `discovery run ${started.runId} continues: ${run?.unitsDone ?? 0} of ${started.unitsTotal} account-regions ended; its discovery.completed follows`,
  };
}

function unitMessage(runId: string, unit: string, cont: number): FanOutMessage {
  return { kind: FAN_OUT_UNIT, runId, unit, cont };
}

function selectSources(settings: FanOutSettings, names: readonly string[] | undefined): Source[] {
  const all = effectiveSources({ sources: [...settings.sources] }, settings.defaultRegion);
  if (!names || names.length === 0) return all;
  const known = new Set(all.map((s) => s.name));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new ValidationError(
      `unknown source(s) ${unknown.join(', ')}; configured: ${[...known].join(', ')}`,
      {
        details: { unknown, configured: [...known] },
      },
    );
  }
  return all.filter((s) => names.includes(s.name));
}

/** One SQS record as Lambda's event source mapping delivers it. */
export interface FanOutRecord {
  readonly messageId: string;
  readonly body: string;
  readonly attributes?: { readonly ApproximateReceiveCount?: string };
}

/** True for a batch of fan-out messages (the fan-out queue), not of change events. */
export function isFanOutBatch(event: unknown): event is { Records: FanOutRecord[] } {
  const records = (event as { Records?: unknown } | null)?.Records;
  return (
    Array.isArray(records) &&
    records.length > 0 &&
    records.every((r) => {
      const record = r as { eventSource?: unknown; body?: unknown };
      if (record?.eventSource !== 'aws:sqs' || typeof record.body !== 'string') return false;
      const kind = parseMessage(record.body)?.kind;
      return kind === FAN_OUT_UNIT || kind === FAN_OUT_DEADLINE;
    })
  );
}

function parseMessage(body: string): FanOutMessage | undefined {
  try {
    const value = JSON.parse(body) as Partial<FanOutMessage>;
    if (value?.kind === FAN_OUT_DEADLINE && typeof value.runId === 'string') return value as FanOutMessage;
    const unit = value as Partial<Extract<FanOutMessage, { kind: typeof FAN_OUT_UNIT }>>;
    if (
      unit?.kind === FAN_OUT_UNIT &&
      typeof unit.runId === 'string' &&
      typeof unit.unit === 'string' &&
      typeof unit.cont === 'number'
    ) {
      return unit as FanOutMessage;
    }
  } catch {
    // not a fan-out message
  }
  return undefined;
}

/**
 * One batch of the fan-out queue, answered with SQS's partial batch response: the messages to deliver
 * again (a unit whose listing failed, before its last delivery; a failure of the ledger or the queue).
 */
export async function processFanOutBatch(
  deps: FanOutDeps,
  records: readonly FanOutRecord[],
  remainingMs?: number,
): Promise<{ batchItemFailures: Array<{ itemIdentifier: string }> }> {
  const failures: Array<{ itemIdentifier: string }> = [];
  const end = remainingMs === undefined ? undefined : Date.now() + remainingMs;
  for (const record of records) {
    const message = parseMessage(record.body);
    if (!message) continue; // not ours: dropping it is all that can be done
    const receiveCount = Number(record.attributes?.ApproximateReceiveCount ?? '1') || 1;
    try {
      const ok =
        message.kind === FAN_OUT_DEADLINE
          ? await deadline(deps, message.runId)
          : await unitInvocation(
              deps,
              message,
              receiveCount,
              end === undefined ? undefined : end - Date.now(),
            );
      if (!ok) failures.push({ itemIdentifier: record.messageId });
    } catch (error) {
      deps.logger?.error('fan-out message failed; SQS delivers it again', {
        message,
        receiveCount,
        error: toFederationError(error, 'fan-out').toJSON(),
      });
      if (message.kind === FAN_OUT_UNIT && receiveCount >= deps.settings.maxReceiveCount) {
        await endFailed(deps, message, [fanOutError(message, error)]).catch(() => undefined);
      }
      failures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures: failures };
}

/** The deadline message: completes the run as partial when its deadline passed, else waits on. */
async function deadline(deps: FanOutDeps, runId: string): Promise<boolean> {
  const run = await deps.ledger.getRun(runId);
  if (run && completionPending(run)) await publishCompletion(deps, run);
  if (!run || run.status === RunStatus.COMPLETED) return true;
  const nowMs = (deps.now ?? (() => new Date()))().getTime();
  if (nowMs < run.deadlineAtMs) {
    await deps.queue.send([
      {
        body: JSON.stringify({ kind: FAN_OUT_DEADLINE, runId } satisfies FanOutMessage),
        delaySeconds: Math.min(MAX_DELAY_SECONDS, Math.ceil((run.deadlineAtMs - nowMs) / 1000)),
      },
    ]);
    return true;
  }
  await completeRun(deps, run, 'deadline');
  return true;
}

/** One invocation's work on a unit. False: deliver the message again. */
async function unitInvocation(
  deps: FanOutDeps,
  message: Extract<FanOutMessage, { kind: typeof FAN_OUT_UNIT }>,
  receiveCount: number,
  remainingMs: number | undefined,
): Promise<boolean> {
  const { ledger, settings } = deps;
  const now = deps.now ?? (() => new Date());
  const run = await ledger.getRun(message.runId);
  if (run && completionPending(run)) await publishCompletion(deps, run);
  // A run that completed (its deadline passed) takes no new work; what was ended stays counted.
  if (!run || run.status === RunStatus.COMPLETED) return true;
  const unit = await ledger.getUnit(message.runId, message.unit);
  if (!unit) return true;
  const invocation = randomUUID();
  const budgetMs = remainingMs ?? 15 * 60_000;
  if (
    !(await ledger.claim(message.runId, message.unit, message.cont, invocation, now().getTime() + budgetMs))
  ) {
    return true; // a stale or duplicate message: the current continuation carries the unit
  }
  const claimed = (await ledger.getUnit(message.runId, message.unit)) ?? unit;
  const state =
    (await ledger.loadCheckpoint<UnitState>(message.runId, claimed)) ?? newUnitState(now().getTime());
  const spec: UnitSpec = claimed.spec;
  const budget = deps.budget?.(remainingMs) ?? timeBudget(budgetMs, settings.reserveMs ?? DEFAULT_RESERVE_MS);
  const worker = new ResumableUnit(
    { ...deps.unit, now },
    settings,
    {
      spec,
      runId: message.runId,
      full: run.full,
      leaseTtlMs: budgetMs + (settings.handOnMs ?? DEFAULT_HAND_ON_MS),
      limiter: deps.limiters.forTarget(spec.accountId, spec.region),
      budget,
    },
    state,
  );
  let step: Awaited<ReturnType<ResumableUnit['run']>>;
  try {
    step = await worker.run();
  } catch (error) {
    await ledger.release(message.runId, message.unit, invocation);
    throw error;
  }
  if (step.kind === 'handOn') {
    if (!(await ledger.handOn(message.runId, message.unit, message.cont, invocation, step.state))) {
      return true; // the claim was lost: another invocation carries the unit
    }
    try {
      await deps.queue.send([
        { body: JSON.stringify(unitMessage(message.runId, message.unit, message.cont + 1)) },
      ]);
    } catch (error) {
      await ledger.undoHandOn(message.runId, message.unit, message.cont);
      throw error;
    }
    await ledger.deleteCheckpoints(message.runId, claimed);
    return true;
  }
  if (step.kind === 'retry') {
    if (receiveCount < settings.maxReceiveCount) {
      await ledger.release(message.runId, message.unit, invocation);
      return false;
    }
    // The last delivery: the unit ends as failed (counted), the message goes on to the dead-letter queue.
    await endUnit(deps, message, invocation, {
      summary: failedSummary(spec, state),
      errors: [...state.errors, deadLettered(spec, receiveCount)],
      events: 0,
      invocations: claimed.invocations ?? 1,
    });
    return false;
  }
  await publishAppended(deps.publisher, step.events, deps.logger);
  await endUnit(deps, message, invocation, {
    summary: step.summary,
    errors: step.errors,
    events: step.events.length,
    invocations: claimed.invocations ?? 1,
    ...(step.accessDenied && spec.organization ? { withoutRole: true } : {}),
  });
  await ledger.deleteCheckpoints(message.runId, claimed);
  return true;
}

async function endUnit(
  deps: FanOutDeps,
  message: Extract<FanOutMessage, { kind: typeof FAN_OUT_UNIT }>,
  invocation: string | undefined,
  outcome: Parameters<FanOutRunLedger['endUnit']>[2],
): Promise<void> {
  const ended = await deps.ledger.endUnit(message.runId, message.unit, outcome, invocation);
  if (!ended) return;
  const run = await deps.ledger.getRun(message.runId);
  if (run && run.status === RunStatus.RUNNING && run.unitsDone >= run.unitsTotal) {
    await completeRun(deps, run, 'lastUnit');
  }
}

/** A unit that failed for good outside its own steps (the ledger, the queue): ends it as failed. */
async function endFailed(
  deps: FanOutDeps,
  message: Extract<FanOutMessage, { kind: typeof FAN_OUT_UNIT }>,
  errors: DiscoveryError[],
): Promise<void> {
  const unit = await deps.ledger.getUnit(message.runId, message.unit);
  if (!unit || unit.ended) return;
  await endUnit(deps, message, undefined, {
    summary: failedSummary(unit.spec),
    errors,
    events: 0,
    invocations: unit.invocations ?? 0,
  });
}

function failedSummary(spec: UnitSpec, state?: UnitState): AccountRegionSummary {
  return {
    source: spec.source,
    accountId: spec.accountId,
    region: spec.region,
    status: AccountRegionStatus.FAILED,
    counts: emptyCounts(),
    apiCalls: { ...(state?.apiCalls ?? {}) },
    throttles: state?.throttles ?? 0,
    durationMs: 0,
  };
}

function deadLettered(spec: UnitSpec, receiveCount: number): DiscoveryError {
  return {
    source: spec.source,
    accountId: spec.accountId,
    region: spec.region,
    operation: 'fan-out',
    code: 'DEAD_LETTERED',
    message: `failed on each of ${receiveCount} deliveries; the message goes to the dead-letter queue`,
  };
}

function fanOutError(message: { runId: string; unit: string }, error: unknown): DiscoveryError {
  const typed = toFederationError(error, 'fan-out');
  const [source = '', accountId, region = ''] = message.unit.split('#');
  return { source, accountId, region, operation: 'fan-out', code: typed.code, message: typed.message };
}

/**
 * Completes the run once (the conditional write decides who does), then {@link publishCompletion}.
 */
export async function completeRun(
  deps: FanOutDeps,
  run: FanOutRunRecord,
  reason: 'lastUnit' | 'deadline',
): Promise<FanOutSummary | undefined> {
  const completed = await deps.ledger.complete(run, reason);
  if (!completed) return undefined;
  return publishCompletion(deps, completed);
}

/** A completed run whose completion may not have been published (its invocation died after completing it). */
function completionPending(run: FanOutRunRecord): boolean {
  return run.status === RunStatus.COMPLETED && run.completedSeq === undefined;
}

/**
 * Publishes a completed run's answer: builds its summary from the run record and the units, appends
 * `discovery.completed` (when the run changed something or was partial, as an unfanned run does) at
 * most once per run, publishes it, answers `replyTo`, and records that it did (`completedSeq`; 0 when
 * the run had nothing to say). An invocation that dies on the way leaves `completedSeq` unset: the next
 * message of the run (a redelivery, the deadline check) finishes it, and the append `once` keeps the
 * event single.
 */
async function publishCompletion(deps: FanOutDeps, completed: FanOutRunRecord): Promise<FanOutSummary> {
  const summary = await runSummary(deps, completed);
  let seq = 0;
  if (summary.events > 0 || summary.partial) {
    const once = `discovery.completed#${completed.runId}`;
    const events = await deps.outbox.append([{ event: EventType.DISCOVERY_COMPLETED, payload: summary }], {
      once,
    });
    // Appended by an invocation that died before publishing: clients that missed it replay it.
    seq = events[0]?.seq ?? (await deps.outbox.appendedOnceAt(once)) ?? 0;
    await publishAppended(deps.publisher, events, deps.logger);
  }
  if (completed.replyTo) {
    try {
      await deps.publisher.reply(completed.replyTo.connectionId, {
        commandId: completed.replyTo.commandId,
        status: 'SUCCEEDED',
        payload: summary,
      });
    } catch (error) {
      deps.logger?.warn('reply failed', { error: toFederationError(error, 'reply').toJSON() });
    }
  }
  await deps.ledger.setCompletedSeq(completed.runId, seq);
  deps.logger?.info('discovery run finished', {
    runId: completed.runId,
    partial: summary.partial,
    counts: summary.counts,
    units: summary.fanOut.units,
    deadlineReached: summary.fanOut.deadlineReached,
  });
  return summary;
}

/**
 * The summary of a completed run: the run record's counters and each unit's summary and errors, bounded
 * (`SUMMARY_ACCOUNT_REGIONS_MAX` account-regions listed, all counted by status; the first errors; the
 * first `SUMMARY_WITHOUT_ROLE_MAX` accounts without the role, all counted).
 */
export async function runSummary(
  deps: Pick<FanOutDeps, 'ledger'>,
  run: FanOutRunRecord,
): Promise<FanOutSummary> {
  const units = await deps.ledger.listUnits(run.runId);
  const accountRegions: AccountRegionSummary[] = [];
  const errors: BoundedErrors[] = [];
  const withoutRole: string[] = [];
  for (const unit of units) {
    if (unit.outcome) {
      accountRegions.push(unit.outcome.summary);
      errors.push(outcomeErrors(unit.outcome));
      if (unit.outcome.withoutRole) withoutRole.push(unit.outcome.summary.accountId ?? unit.spec.accountId);
      continue;
    }
    accountRegions.push(failedSummary(unit.spec));
    errors.push(
      boundErrors([
        {
          source: unit.spec.source,
          accountId: unit.spec.accountId,
          region: unit.spec.region,
          operation: 'fan-out',
          code: 'DEADLINE',
          message: "the run's deadline passed before this account-region ended",
        },
      ]),
    );
  }
  const unfinished = run.unitsDone < run.unitsTotal;
  return {
    runId: run.runId,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt ?? new Date().toISOString(),
    durationMs: run.durationMs ?? 0,
    full: run.full,
    sources: run.sources,
    partial: run.partial || unfinished,
    counts: { ...emptyCounts(), ...run.counts },
    apiCalls: run.apiCalls,
    throttles: run.throttles,
    // Bounded like the errors (an organisation's account-regions pass 400 KB); every unit's summary
    // stays in its UNIT# item for the retention.
    ...boundAccountRegions(accountRegions),
    ...joinErrors(errors),
    events: run.events,
    fanOut: {
      units: run.unitsTotal,
      unitsEnded: run.unitsDone,
      invocations: run.invocations,
      unitStatus: run.unitStatus,
      deadlineReached: run.deadlineReached === true,
    },
    // The accounts without the role come from the UNIT# items, like the account-regions: the RUN#
    // record keeps none (a set of them passed 400 KB at about 33,000 accounts).
    ...(run.organizationAccounts !== undefined
      ? { organization: { accounts: run.organizationAccounts, ...boundWithoutRole(withoutRole) } }
      : {}),
  };
}
