import type { FederatedApi, FederatedPlan } from '../model.js';
import type { DiscoveryCounts } from './summary.js';

export interface CatalogDiff {
  /** New APIs and APIs whose fingerprint changed. */
  readonly upserted: FederatedApi[];
  readonly unchanged: FederatedApi[];
  /** Previous entries that are gone (only when the read was complete). */
  readonly removed: FederatedApi[];
  /** Plans gone from an API that is still federated, or from a removed API. */
  readonly removedPlans: Array<{ api: FederatedApi; plan: FederatedPlan }>;
  /**
   * Changed APIs held back because the change would remove a plan while the read was partial: the
   * ledger keeps the previous entry, so a later complete run still sees the plan go.
   */
  readonly deferred: FederatedApi[];
}

export interface DiffOptions {
  /** True when every call of the account-region succeeded: only then is anything removed. */
  readonly complete: boolean;
  /** Previous entries whose state could not be read this run (failed GetStages or GetExport): left as they are. */
  readonly unread: ReadonlySet<string>;
}

/**
 * Compares what the run discovered with the ledger's previous entries of the same account-region.
 * Never removes on doubt: when the read was not complete, nothing is removed and no plan is dropped.
 */
export function diffCatalog(
  previous: readonly FederatedApi[],
  current: readonly FederatedApi[],
  options: DiffOptions,
): CatalogDiff {
  const before = new Map(previous.map((api) => [api.id, api]));
  const seen = new Set(current.map((api) => api.id));
  const diff: CatalogDiff = { upserted: [], unchanged: [], removed: [], removedPlans: [], deferred: [] };
  for (const api of current) {
    const prev = before.get(api.id);
    if (prev && prev.fingerprint === api.fingerprint) {
      diff.unchanged.push(prev);
      continue;
    }
    const planIds = new Set(api.plans.map((p) => p.id));
    const gonePlans = prev ? prev.plans.filter((p) => !planIds.has(p.id)) : [];
    if (gonePlans.length > 0 && !options.complete) {
      diff.deferred.push(prev as FederatedApi);
      continue;
    }
    diff.upserted.push(api);
    for (const plan of gonePlans) diff.removedPlans.push({ api: prev as FederatedApi, plan });
  }
  if (options.complete) {
    for (const prev of previous) {
      if (seen.has(prev.id) || options.unread.has(prev.id)) continue;
      diff.removed.push(prev);
      for (const plan of prev.plans) diff.removedPlans.push({ api: prev, plan });
    }
  }
  return diff;
}

/** Adds what a diff of `discovered` catalog entries changed to an account-region's counts. */
export function countDiff(counts: DiscoveryCounts, discovered: number, diff: CatalogDiff): void {
  counts.discovered += discovered;
  counts.upserted += diff.upserted.length;
  counts.unchanged += diff.unchanged.length;
  counts.removed += diff.removed.length;
  counts.plansRemoved += diff.removedPlans.length;
}
