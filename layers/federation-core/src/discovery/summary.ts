/** What a discovery run reports: stored as a `RUN#` record, returned by the handler, sent as `discovery.completed`. */

import { RUN_SUMMARY_ACCOUNT_REGIONS_MAX, RUN_SUMMARY_WITHOUT_ROLE_MAX } from '../protocol/protocol.js';

export interface DiscoveryCounts {
  /** Federated APIs (stages) seen this run: upserted + unchanged. */
  discovered: number;
  /** New or changed (fingerprint differs): one `api.upserted` each. */
  upserted: number;
  unchanged: number;
  /** Federated APIs gone (API, stage, last plan deleted, or now filtered out): one `api.removed` each. */
  removed: number;
  /** Plans gone (usage plan deleted or detached, or their API removed): one `plan.removed` each. */
  plansRemoved: number;
  /** REST APIs or stages not federated: label filter, no usage plan, not deployed. */
  skipped: number;
  /** `GetExport` calls that returned a document. */
  exported: number;
  /**
   * Stages whose export API Gateway refused with a client error (4xx): federated without a
   * definition, not a failure of the account-region; tried again when the deployment changes.
   */
  exportRefused: number;
}

export const AccountRegionStatus = {
  /** Everything read: the diff is complete, removals applied. */
  COMPLETE: 'complete',
  /** A call failed after retries: upserts of what was read are kept, nothing was removed. */
  PARTIAL: 'partial',
  /** Listing failed: nothing was diffed. */
  FAILED: 'failed',
  /** Another run holds the lease of this account-region: not touched by this run. */
  BUSY: 'busy',
} as const;
export type AccountRegionStatus = (typeof AccountRegionStatus)[keyof typeof AccountRegionStatus];

export interface DiscoveryError {
  readonly source: string;
  readonly accountId?: string;
  readonly region: string;
  /** The failed call, e.g. `GetStages abc123`. */
  readonly operation?: string;
  readonly code: string;
  readonly message: string;
}

export interface AccountRegionSummary {
  readonly source: string;
  readonly accountId?: string;
  readonly region: string;
  readonly status: AccountRegionStatus;
  readonly counts: DiscoveryCounts;
  readonly apiCalls: Record<string, number>;
  readonly throttles: number;
  readonly durationMs: number;
}

export interface DiscoverySummary {
  readonly runId: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  /** Re-exported every definition. */
  readonly full: boolean;
  /** A targeted run (change events): only the REST APIs the events named were re-read. */
  readonly targeted?: boolean;
  /** Names of the sources of this run. */
  readonly sources: readonly string[];
  /** True when any account-region was partial or failed: nothing of those was removed. */
  readonly partial: boolean;
  readonly counts: DiscoveryCounts;
  /** API Gateway calls by operation (every attempt, retries included). */
  readonly apiCalls: Record<string, number>;
  /** Throttled API Gateway calls (retried). */
  readonly throttles: number;
  /**
   * At most {@link SUMMARY_ACCOUNT_REGIONS_MAX} account-regions, each with its status, counts and calls
   * (all of them in a run of that many or fewer, in run order); in a larger run, those that were not
   * complete come first (failed, partial, busy), then complete ones. The summary is a `RUN#` item and a
   * `discovery.completed` event, both under DynamoDB's 400 KB item limit: an organisation of
   * 300 accounts × 5 regions would not fit with every account-region listed.
   */
  readonly accountRegions: readonly AccountRegionSummary[];
  /** Every account-region of the run, also those not listed in `accountRegions`. */
  readonly accountRegionCount: number;
  /** Every account-region of the run by status (`complete`, `partial`, `failed`, `busy`). */
  readonly accountRegionsByStatus: Record<string, number>;
  /**
   * The first {@link SUMMARY_ERRORS_MAX} errors in full (the rest are counted): the summary is a
   * `RUN#` item and a `discovery.completed` event, both under DynamoDB's 400 KB item limit.
   */
  readonly errors: readonly DiscoveryError[];
  /** Every error of the run, also those not listed in `errors`. */
  readonly errorCount: number;
  /** Every error of the run by code. */
  readonly errorsByCode: Record<string, number>;
  /** Outbox events appended by the run before `discovery.completed`. */
  readonly events: number;
}

/** Errors a run summary lists in full; each message is cut at {@link ERROR_MESSAGE_MAX} characters. */
export const SUMMARY_ERRORS_MAX = 100;
export const ERROR_MESSAGE_MAX = 500;
/**
 * Account-regions a run summary lists (the protocol's bound). One entry is about 270 bytes by DynamoDB's
 * sizing (316 of JSON; a 64-character source name and every operation counted make it about 400): 500
 * are 135–200 KB, with room for the {@link SUMMARY_ERRORS_MAX} errors under the 400 KB item limit.
 */
export const SUMMARY_ACCOUNT_REGIONS_MAX = RUN_SUMMARY_ACCOUNT_REGIONS_MAX;

/**
 * Accounts without the role a run summary lists (`organization.withoutRole`, the protocol's bound). One
 * id is 13 bytes by DynamoDB's sizing (12 by moto's, 15 of JSON): 1,000 are 13 KB, and the largest
 * summary ({@link SUMMARY_ACCOUNT_REGIONS_MAX} account-regions and {@link SUMMARY_ERRORS_MAX} errors at
 * their largest, 269 KB) is 282 KB with them, well under the 400 KB item limit. Unbounded, 10,852 accounts
 * without the role passed it with those lists full (about 31,400 with them empty).
 */
export const SUMMARY_WITHOUT_ROLE_MAX = RUN_SUMMARY_WITHOUT_ROLE_MAX;

/** With organisation sources: the accounts listed, and those the role could not be assumed in. */
export interface OrganizationSummary {
  /** Accounts listed in the run's organisation scopes. */
  readonly accounts: number;
  /** The first {@link SUMMARY_WITHOUT_ROLE_MAX} accounts without the role, sorted. */
  readonly withoutRole: readonly string[];
  /** Every account without the role, also those not listed in `withoutRole`. */
  readonly withoutRoleCount: number;
}

/**
 * The summary's accounts without the role: each once, sorted, at most {@link SUMMARY_WITHOUT_ROLE_MAX}
 * listed, all of them counted (an account fails in each of its regions: it is one account).
 */
export function boundWithoutRole(
  accountIds: Iterable<string>,
): Pick<OrganizationSummary, 'withoutRole' | 'withoutRoleCount'> {
  const all = [...new Set(accountIds)].sort();
  return { withoutRole: all.slice(0, SUMMARY_WITHOUT_ROLE_MAX), withoutRoleCount: all.length };
}

/** A run's account-regions as its summary holds them: a bounded list, all of them counted by status. */
export type BoundedAccountRegions = Pick<
  DiscoverySummary,
  'accountRegions' | 'accountRegionCount' | 'accountRegionsByStatus'
>;

/**
 * The summary's account-region fields: every account-region when there are at most
 * {@link SUMMARY_ACCOUNT_REGIONS_MAX}, else those that were not complete first (in run order), then
 * complete ones, up to the bound; all of them counted by status.
 */
export function boundAccountRegions(all: readonly AccountRegionSummary[]): BoundedAccountRegions {
  const accountRegionsByStatus: Record<string, number> = {};
  for (const ar of all) accountRegionsByStatus[ar.status] = (accountRegionsByStatus[ar.status] ?? 0) + 1;
  const accountRegions =
    all.length <= SUMMARY_ACCOUNT_REGIONS_MAX
      ? all
      : [
          ...all.filter((ar) => ar.status !== AccountRegionStatus.COMPLETE),
          ...all.filter((ar) => ar.status === AccountRegionStatus.COMPLETE),
        ].slice(0, SUMMARY_ACCOUNT_REGIONS_MAX);
  return { accountRegions, accountRegionCount: all.length, accountRegionsByStatus };
}

/** A run's (or a fanned-out unit's) errors: the first in full, all of them counted by code. */
export type BoundedErrors = Pick<DiscoverySummary, 'errors' | 'errorCount' | 'errorsByCode'>;

/** The summary's error fields: the first errors in full (messages cut), all of them counted by code. */
export function boundErrors(errors: readonly DiscoveryError[]): BoundedErrors {
  const errorsByCode: Record<string, number> = {};
  for (const e of errors) errorsByCode[e.code] = (errorsByCode[e.code] ?? 0) + 1;
  return {
    errors: errors.slice(0, SUMMARY_ERRORS_MAX).map(cutMessage),
    errorCount: errors.length,
    errorsByCode,
  };
}

/**
 * Bounded errors of several parts (the units of a fanned-out run) as one: the first listed errors of
 * the parts, in order, up to {@link SUMMARY_ERRORS_MAX}, and the counts added up.
 */
export function joinErrors(parts: readonly BoundedErrors[]): BoundedErrors {
  const errors: DiscoveryError[] = [];
  const errorsByCode: Record<string, number> = {};
  let errorCount = 0;
  for (const part of parts) {
    for (const e of part.errors) if (errors.length < SUMMARY_ERRORS_MAX) errors.push(cutMessage(e));
    for (const [code, n] of Object.entries(part.errorsByCode))
      errorsByCode[code] = (errorsByCode[code] ?? 0) + n;
    errorCount += part.errorCount;
  }
  return { errors, errorCount, errorsByCode };
}

function cutMessage(e: DiscoveryError): DiscoveryError {
  return e.message.length > ERROR_MESSAGE_MAX
    ? { ...e, message: `${e.message.slice(0, ERROR_MESSAGE_MAX)}…` }
    : e;
}

export function emptyCounts(): DiscoveryCounts {
  return {
    discovered: 0,
    upserted: 0,
    unchanged: 0,
    removed: 0,
    plansRemoved: 0,
    skipped: 0,
    exported: 0,
    exportRefused: 0,
  };
}

export function addCounts(into: DiscoveryCounts, from: DiscoveryCounts): void {
  for (const key of Object.keys(into) as (keyof DiscoveryCounts)[]) into[key] += from[key];
}

export function addCalls(into: Record<string, number>, from: Record<string, number>): void {
  for (const [op, n] of Object.entries(from)) into[op] = (into[op] ?? 0) + n;
}

/** The parts of a run the summary is made of: its request, timing and each account-region's outcome. */
export interface RunSummaryInput {
  readonly runId: string;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  readonly durationMs: number;
  readonly full: boolean;
  /** A targeted run (change events). */
  readonly targeted?: boolean;
  readonly sources: readonly string[];
  readonly accountRegions: readonly {
    readonly summary: AccountRegionSummary;
    readonly errors: readonly DiscoveryError[];
  }[];
  /** Outbox events appended by the run before `discovery.completed`. */
  readonly events: number;
}

/**
 * The run summary: counts and API calls added up over the account-regions; partial when any
 * account-region was partial or failed (nothing of those was removed).
 */
export function summarizeRun(input: RunSummaryInput): DiscoverySummary {
  const counts = emptyCounts();
  const apiCalls: Record<string, number> = {};
  let throttles = 0;
  for (const { summary } of input.accountRegions) {
    addCounts(counts, summary.counts);
    addCalls(apiCalls, summary.apiCalls);
    throttles += summary.throttles;
  }
  return {
    runId: input.runId,
    startedAt: input.startedAt.toISOString(),
    finishedAt: input.finishedAt.toISOString(),
    durationMs: input.durationMs,
    full: input.full,
    ...(input.targeted ? { targeted: true } : {}),
    sources: input.sources,
    partial: input.accountRegions.some(
      ({ summary }) =>
        summary.status === AccountRegionStatus.PARTIAL || summary.status === AccountRegionStatus.FAILED,
    ),
    counts,
    apiCalls,
    throttles,
    ...boundAccountRegions(input.accountRegions.map((o) => o.summary)),
    ...boundErrors(input.accountRegions.flatMap((o) => o.errors)),
    events: input.events,
  };
}
