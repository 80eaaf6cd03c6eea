/** Building the catalog from API Gateway's answers: pure logic, no emulator. */
import type { RestApi, Stage, UsagePlan } from '@aws-sdk/client-api-gateway';
import { describe, expect, it } from 'vitest';
import {
  emptyCounts,
  type FederatedApi,
  federatedApi,
  federatedApiId,
  indexPlans,
  planStages,
  selectCandidates,
  toPlan,
} from '../../layers/federation-core/src/index.js';

const RULES = { acceptApiWithoutUsagePlan: false, labels: { include: [], exclude: [] } };
const CONTEXT = { accountId: '123456789012', region: 'eu-west-1', full: false, previousById: new Map() };

const gold: UsagePlan = {
  id: 'up-gold',
  name: 'Gold',
  throttle: { rateLimit: 10, burstLimit: undefined },
  quota: { limit: 1000, period: 'MONTH' },
  apiStages: [{ apiId: 'a1', stage: 'prod' }],
};
const apis: RestApi[] = [
  { id: 'a1', name: 'Pets', tags: { team: 'blue' } },
  { id: 'a2', name: 'Orders' },
  { name: 'no id' },
];
const stages: Stage[] = [
  { stageName: 'prod', deploymentId: 'd1', lastUpdatedDate: new Date('2026-01-01T00:00:00Z') },
  { stageName: 'dev', deploymentId: 'd2' },
  { stageName: 'draft' },
];

describe('catalog building', () => {
  it('selects only REST APIs on a usage plan that pass the label filter, counting the others', () => {
    const counts = emptyCounts();
    const plans = indexPlans([gold]);
    expect(selectCandidates(apis, plans, RULES, counts).map((c) => c.api.id)).toEqual(['a1']);
    expect(counts.skipped).toBe(1);
    const excluded = emptyCounts();
    const rules = { ...RULES, labels: { include: [], exclude: ['team=blue'] } };
    expect(selectCandidates(apis, plans, rules, excluded)).toEqual([]);
    expect(excluded.skipped).toBe(2);
    const all = selectCandidates(apis, plans, { ...RULES, acceptApiWithoutUsagePlan: true }, emptyCounts());
    expect(all.map((c) => c.api.id)).toEqual(['a1', 'a2']);
  });

  it('federates each deployed stage on a plan once, and exports only a changed deployment', () => {
    const counts = emptyCounts();
    const plans = indexPlans([gold]);
    const [candidate] = selectCandidates(apis, plans, RULES, emptyCounts());
    const planned = planStages([{ ...candidate!, stages }], plans, RULES, CONTEXT, counts);
    expect(planned.map((p) => p.stage.stageName)).toEqual(['prod']);
    expect(counts.skipped).toBe(2); // dev has no plan, draft is not deployed
    expect(planned[0]).toMatchObject({
      id: federatedApiId('123456789012', 'eu-west-1', 'a1', 'prod'),
      needsExport: true,
      plans: [toPlan(planned[0]!.id, gold)],
    });

    const definition = { format: 'openapi-3.0' as const, sha256: 'a'.repeat(64), size: 10 };
    const now = '2026-02-01T00:00:00.000Z';
    const entry = federatedApi(planned[0]!, definition, { sourceName: 'main', ...CONTEXT, now });
    expect(entry).toMatchObject({
      name: 'Pets',
      version: 'prod',
      labels: ['team=blue'],
      endpoint: 'https://a1.execute-api.eu-west-1.amazonaws.com/prod',
      source: { name: 'main', restApiId: 'a1', stageName: 'prod', deploymentId: 'd1' },
      updatedAt: now,
    });

    const previousById = new Map<string, FederatedApi>([[entry.id, entry]]);
    const again = planStages([{ ...candidate!, stages }], plans, RULES, { ...CONTEXT, previousById }, counts);
    expect(again[0]?.needsExport).toBe(false);
    const same = federatedApi(again[0]!, definition, { sourceName: 'main', ...CONTEXT, now: 'later' });
    expect(same.updatedAt).toBe(now);
    const forced = planStages(
      [{ ...candidate!, stages }],
      plans,
      RULES,
      { ...CONTEXT, previousById, full: true },
      counts,
    );
    expect(forced[0]?.needsExport).toBe(true);
  });

  it('carries a plan’s throttle and quota without undefined fields', () => {
    const plan = toPlan('api', gold);
    expect(plan).toEqual({
      id: plan.id,
      usagePlanId: 'up-gold',
      name: 'Gold',
      security: 'API_KEY',
      throttle: { rateLimit: 10 },
      quota: { limit: 1000, period: 'MONTH' },
    });
  });
});
