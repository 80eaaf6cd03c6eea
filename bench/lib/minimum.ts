/**
 * What discovery cannot do with less: the theoretical minimum of API Gateway calls for a scenario, and
 * the shortest wall time those calls can take under API Gateway's management-API limit (pure).
 */
import type { SeedDescription } from '../../emulator/seeder.js';

/** API Gateway's largest page for GetRestApis / GetUsagePlans. */
export const MAX_PAGE = 500;
/** API Gateway's page when the caller gives no `limit` (what a naive SDK call gets). */
export const DEFAULT_PAGE = 25;

/** What one account-region holds, as far as discovery's call count is concerned. */
export interface AccountRegionShape {
  readonly apis: number;
  readonly usagePlans: number;
  /** APIs with at least one deployed stage on a usage plan. */
  readonly federableApis: number;
  /** Deployed stages attached to at least one usage plan (one federated API each). */
  readonly federableStages: number;
  /** Deployed stages in all (what a naive agent re-exports when it federates everything). */
  readonly deployedStages: number;
}

export interface CallCounts {
  GetRestApis: number;
  GetUsagePlans: number;
  GetStages: number;
  GetExport: number;
  total: number;
}

/** Pages needed to list `items` (at least one: a list of nothing still costs a call). */
export function pages(items: number, pageSize: number = MAX_PAGE): number {
  return Math.max(1, Math.ceil(items / pageSize));
}

/** The shape of one account-region's seed (the generator's output, or any description). */
export function shapeOf(description: SeedDescription): AccountRegionShape {
  const onPlan = new Set<string>();
  for (const plan of description.usagePlans ?? []) {
    for (const s of plan.stages) onPlan.add(`${s.api}/${s.stage}`);
  }
  let federableApis = 0;
  let federableStages = 0;
  let deployedStages = 0;
  for (const api of description.apis) {
    const federated = api.stages.filter((stage) => onPlan.has(`${api.key}/${stage}`)).length;
    deployedStages += api.stages.length;
    federableStages += federated;
    if (federated > 0) federableApis++;
  }
  return {
    apis: description.apis.length,
    usagePlans: description.usagePlans?.length ?? 0,
    federableApis,
    federableStages,
    deployedStages,
  };
}

function counts(c: Omit<CallCounts, 'total'>): CallCounts {
  return { ...c, total: c.GetRestApis + c.GetUsagePlans + c.GetStages + c.GetExport };
}

/**
 * Minimum calls of a first run in one account-region: every REST API and usage plan listed with the
 * largest page, one GetStages per federable API, one GetExport per federable stage.
 */
export function minimumFirstRun(shape: AccountRegionShape): CallCounts {
  return counts({
    GetRestApis: pages(shape.apis),
    GetUsagePlans: pages(shape.usagePlans),
    GetStages: shape.federableApis,
    GetExport: shape.federableStages,
  });
}

/** Minimum calls of a rerun: the same listing and stages, and an export only for each changed stage. */
export function minimumRerun(shape: AccountRegionShape, changedStages: number): CallCounts {
  return counts({ ...minimumFirstRun(shape), GetExport: changedStages });
}

/**
 * Calls of the naive strategy (`bench/baseline.ts`) when nothing fails: SDK default page (25), every
 * API's stages, every federated stage exported on every run.
 */
export function naiveRun(shape: AccountRegionShape): CallCounts {
  return counts({
    GetRestApis: pages(shape.apis, DEFAULT_PAGE),
    GetUsagePlans: pages(shape.usagePlans, DEFAULT_PAGE),
    GetStages: shape.apis,
    GetExport: shape.federableStages,
  });
}

export function addCounts(list: readonly CallCounts[]): CallCounts {
  return counts({
    GetRestApis: list.reduce((s, c) => s + c.GetRestApis, 0),
    GetUsagePlans: list.reduce((s, c) => s + c.GetUsagePlans, 0),
    GetStages: list.reduce((s, c) => s + c.GetStages, 0),
    GetExport: list.reduce((s, c) => s + c.GetExport, 0),
  });
}

export interface RateLimit {
  readonly ratePerSecond: number;
  readonly burst: number;
}

/**
 * Shortest wall time (seconds) of runs making `callsPerAccountRegion[i]` calls in account-region i, all
 * account-regions at once, each under its own token bucket that starts full: the first `burst` calls
 * go at once, the rest at `ratePerSecond`. Calls depend on each other in `dependentRoundTrips` steps
 * (list → stages → export), each costing at least `latencyMs`.
 */
export function idealSeconds(
  callsPerAccountRegion: readonly number[],
  limit: RateLimit,
  latencyMs = 0,
  dependentRoundTrips = 3,
): number {
  const paced = Math.max(
    0,
    ...callsPerAccountRegion.map((n) => Math.max(0, n - limit.burst) / limit.ratePerSecond),
  );
  return paced + (dependentRoundTrips * latencyMs) / 1000;
}
