/**
 * Building the catalog from API Gateway's answers: pure functions, no I/O, so every rule (label
 * filter, usage plans, deployed stages, which stages need an export, the fingerprint) is unit-tested
 * without the emulator. The account-region run (`account-region.ts`) reads, calls these, and writes.
 */
import type { RestApi, Stage, UsagePlan } from '@aws-sdk/client-api-gateway';
import type { AgentConfig } from '../config/schema.js';
import type { DefinitionRef, DefinitionUnavailable, FederatedApi, FederatedPlan } from '../model.js';
import {
  detectDefinitionFormat,
  federatedApiId,
  federatedPlanId,
  fingerprint,
  labelsFromTags,
  passesLabelFilter,
  stageEndpoint,
} from './identity.js';
import type { DiscoveryCounts } from './summary.js';

/** The settings catalog building reads. */
export type CatalogRules = Pick<AgentConfig, 'acceptApiWithoutUsagePlan' | 'labels'>;

/** Usage plans by the stage they are attached to (`<restApiId>/<stageName>`), and the APIs on any plan. */
export interface PlanIndex {
  readonly byStage: ReadonlyMap<string, readonly UsagePlan[]>;
  readonly apisWithPlans: ReadonlySet<string>;
}

export function indexPlans(usagePlans: readonly UsagePlan[]): PlanIndex {
  const byStage = new Map<string, UsagePlan[]>();
  const apisWithPlans = new Set<string>();
  for (const plan of usagePlans) {
    for (const stage of plan.apiStages ?? []) {
      if (!stage.apiId || !stage.stage) continue;
      const key = `${stage.apiId}/${stage.stage}`;
      byStage.set(key, [...(byStage.get(key) ?? []), plan]);
      apisWithPlans.add(stage.apiId);
    }
  }
  return { byStage, apisWithPlans };
}

/** A REST API worth reading the stages of, with its labels. */
export interface Candidate {
  readonly api: RestApi & { id: string };
  readonly labels: string[];
}

/**
 * The REST APIs that can be federated: label filter and usage plans first, so the others cost no
 * call. Counts each skipped API in `counts.skipped`.
 */
export function selectCandidates(
  restApis: readonly RestApi[],
  plans: PlanIndex,
  rules: CatalogRules,
  counts: DiscoveryCounts,
): Candidate[] {
  const candidates: Candidate[] = [];
  for (const api of restApis) {
    if (!api.id) continue;
    const labels = labelsFromTags(api.tags);
    if (!passesLabelFilter(labels, rules.labels)) {
      counts.skipped++;
      continue;
    }
    if (!rules.acceptApiWithoutUsagePlan && !plans.apisWithPlans.has(api.id)) {
      counts.skipped++;
      continue;
    }
    candidates.push({ api: api as Candidate['api'], labels });
  }
  return candidates;
}

/** One deployed stage to federate, before its definition is known. */
export interface StagePlan {
  readonly api: RestApi & { id: string };
  readonly labels: string[];
  readonly stage: Stage & { stageName: string; deploymentId: string };
  readonly id: string;
  readonly plans: FederatedPlan[];
  readonly prev?: FederatedApi;
  /** The deployment changed (or `full`): export it. Otherwise the previous definition stands. */
  readonly needsExport: boolean;
}

/** Where the stages were read, and what the ledger knew before. */
export interface StageContext {
  readonly accountId: string;
  readonly region: string;
  readonly full: boolean;
  readonly previousById: ReadonlyMap<string, FederatedApi>;
}

/**
 * One federated API per deployed stage with a usage plan (or any deployed stage when accepted).
 * Counts each skipped stage (not deployed, no plan) in `counts.skipped`.
 */
export function planStages(
  staged: readonly (Candidate & { stages: readonly Stage[] })[],
  plans: PlanIndex,
  rules: CatalogRules,
  context: StageContext,
  counts: DiscoveryCounts,
): StagePlan[] {
  const out: StagePlan[] = [];
  for (const entry of staged) {
    for (const stage of entry.stages) {
      if (!stage.stageName || !stage.deploymentId) {
        counts.skipped++;
        continue;
      }
      const restApiId = entry.api.id;
      const attached = plans.byStage.get(`${restApiId}/${stage.stageName}`) ?? [];
      if (attached.length === 0 && !rules.acceptApiWithoutUsagePlan) {
        counts.skipped++;
        continue;
      }
      const id = federatedApiId(context.accountId, context.region, restApiId, stage.stageName);
      const prev = context.previousById.get(id);
      out.push({
        api: entry.api,
        labels: entry.labels,
        stage: stage as StagePlan['stage'],
        id,
        plans: attached.map((plan) => toPlan(id, plan)).sort((a, b) => a.id.localeCompare(b.id)),
        ...(prev ? { prev } : {}),
        // A refused export is tried again only for a new deployment (or `full`).
        needsExport:
          context.full ||
          (!prev?.definition && !prev?.definitionUnavailable) ||
          prev.source.deploymentId !== stage.deploymentId,
      });
    }
  }
  return out;
}

/**
 * The catalog entry of a stage with its definition, or with why it has none (an export API Gateway
 * refused). `updatedAt` stays the previous one when nothing the control plane sees changed.
 */
export function federatedApi(
  stage: StagePlan,
  outcome: DefinitionRef | DefinitionUnavailable,
  context: {
    readonly sourceName: string;
    readonly accountId: string;
    readonly region: string;
    readonly now: string;
  },
): FederatedApi {
  const restApiId = stage.api.id;
  const endpoint = stageEndpoint(restApiId, context.region, stage.stage.stageName);
  const name = stage.api.name ?? restApiId;
  const description = stage.api.description || undefined;
  const unavailable = 'code' in outcome ? outcome : undefined;
  const definition = 'code' in outcome ? undefined : outcome;
  const fp = fingerprint({
    name,
    description,
    stageName: stage.stage.stageName,
    deploymentId: stage.stage.deploymentId,
    stageUpdatedAt: stage.stage.lastUpdatedDate?.toISOString(),
    endpoint,
    labels: stage.labels,
    plans: stage.plans,
    definitionSha256: definition?.sha256,
  });
  return {
    id: stage.id,
    name,
    version: stage.stage.stageName,
    ...(description ? { description } : {}),
    source: {
      name: context.sourceName,
      accountId: context.accountId,
      region: context.region,
      restApiId,
      stageName: stage.stage.stageName,
      deploymentId: stage.stage.deploymentId,
    },
    endpoint,
    labels: stage.labels,
    plans: stage.plans,
    ...(definition ? { definition } : {}),
    ...(unavailable ? { definitionUnavailable: unavailable } : {}),
    fingerprint: fp,
    updatedAt: stage.prev?.fingerprint === fp ? stage.prev.updatedAt : context.now,
  };
}

/** A usage plan as a federated plan of the API `apiId`. */
export function toPlan(apiId: string, plan: UsagePlan): FederatedPlan {
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

/** The format of an exported document, from its bytes (`unknown` when it is not JSON). */
export function formatOf(bytes: Uint8Array): DefinitionRef['format'] {
  try {
    return detectDefinitionFormat(JSON.parse(new TextDecoder().decode(bytes)));
  } catch {
    return 'unknown';
  }
}
