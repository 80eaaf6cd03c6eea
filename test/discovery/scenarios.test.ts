import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PolicyDocument } from '../../emulator/proxy.js';
import {
  deleteApi,
  redeployStage,
  type SeedDescription,
  type SeedResult,
  seed,
} from '../../emulator/seeder.js';
import {
  DiscoveryEngine,
  type DiscoveryResult,
  EventType,
  type FederatedApi,
  federatedApiId,
  federatedPlanId,
  type OutboxEvent,
} from '../../layers/federation-core/src/index.js';
import documentedPolicy from '../fixtures/documented-policy.json' with { type: 'json' };
import { type Emulator, startEmulator } from '../support/emulator.js';
import { type DiscoveryHarness, discoveryHarness } from './harness.js';

/**
 * a: prod on two usage plans (gold, silver); b: prod on silver, dev on none; c: deployed, on no plan;
 * d: not deployed. Silver covers two stages (a/prod, b/prod).
 */
const SEED: SeedDescription = {
  apis: [
    {
      key: 'a',
      name: 'Alpha',
      description: 'Alpha API',
      tags: { team: 'payments', visibility: 'public' },
      stages: ['prod'],
    },
    {
      key: 'b',
      name: 'Beta',
      description: 'Beta API',
      tags: { team: 'catalog', visibility: 'internal' },
      stages: ['dev', 'prod'],
    },
    { key: 'c', name: 'Gamma', tags: { team: 'platform', visibility: 'public' }, stages: ['prod'] },
    { key: 'd', name: 'Delta', tags: { team: 'platform' }, stages: [] },
  ],
  usagePlans: [
    {
      key: 'gold',
      name: 'Gold',
      description: 'Premium',
      throttle: { rateLimit: 500, burstLimit: 1000 },
      quota: { limit: 1_000_000, period: 'MONTH' },
      stages: [{ api: 'a', stage: 'prod' }],
    },
    {
      key: 'silver',
      name: 'Silver',
      throttle: { rateLimit: 50, burstLimit: 100 },
      quota: { limit: 10_000, period: 'WEEK' },
      stages: [
        { api: 'a', stage: 'prod' },
        { api: 'b', stage: 'prod' },
      ],
    },
  ],
};

const GET_POLICY: PolicyDocument = {
  Version: '2012-10-17',
  Statement: [documentedPolicy.PolicyDocument.Statement[0]!],
} as PolicyDocument;

function apiCalls(emu: Emulator): Record<string, number> {
  return emu.proxy.calls.byOperation({ service: 'apigateway' });
}

function eventsOf(result: Pick<DiscoveryResult, 'summary' | 'events'>, type: string): OutboxEvent[] {
  return result.events.filter((e) => e.event === type);
}

describe('discovery against the emulator', () => {
  let emu: Emulator;
  let seeded: SeedResult;
  let h: DiscoveryHarness;

  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu?.stop();
  });
  beforeEach(async () => {
    await emu.reset();
    seeded = await seed(emu.apiGateway(), SEED);
    h = await discoveryHarness(emu);
    emu.proxy.resetCalls();
  });

  const idOf = (key: string, stage: string) =>
    federatedApiId(emu.accountId, emu.region, seeded.apis[key]!.restApiId, stage);

  it('federates each stage on a usage plan with one plan per usage plan, at the minimum of calls', async () => {
    const { summary, events } = await h.engine.run();

    // GetRestApis 1 page, GetUsagePlans 1 page, GetStages for a and b only (c, d on no plan), 2 exports.
    expect(apiCalls(emu)).toEqual({ GetRestApis: 1, GetUsagePlans: 1, GetStages: 2, GetExport: 2 });
    expect(summary.apiCalls).toEqual({ GetRestApis: 1, GetUsagePlans: 1, GetStages: 2, GetExport: 2 });
    expect(summary.counts).toMatchObject({
      discovered: 2,
      upserted: 2,
      unchanged: 0,
      removed: 0,
      skipped: 3,
      exported: 2,
    });
    expect(summary.partial).toBe(false);
    expect(events.map((e) => e.event)).toEqual([
      EventType.API_UPSERTED,
      EventType.API_UPSERTED,
      EventType.DISCOVERY_COMPLETED,
    ]);

    const catalog = await h.catalog.listByAccountRegion(emu.accountId, emu.region);
    const byId = new Map(catalog.map((api) => [api.id, api]));
    const alpha = byId.get(idOf('a', 'prod')) as FederatedApi;
    const beta = byId.get(idOf('b', 'prod')) as FederatedApi;
    expect(catalog).toHaveLength(2);
    expect(alpha).toMatchObject({
      name: 'Alpha',
      version: 'prod',
      description: 'Alpha API',
      endpoint: `https://${seeded.apis.a!.restApiId}.execute-api.us-east-1.amazonaws.com/prod`,
      labels: ['team=payments', 'visibility=public'],
      source: {
        name: 'default',
        accountId: emu.accountId,
        region: 'us-east-1',
        restApiId: seeded.apis.a!.restApiId,
        stageName: 'prod',
        deploymentId: seeded.apis.a!.deploymentId,
      },
    });
    // the stage on two usage plans has two plans, with throttle and quota
    const gold = seeded.usagePlans.gold!.usagePlanId;
    const silver = seeded.usagePlans.silver!.usagePlanId;
    expect(alpha.plans.map((p) => p.usagePlanId).sort()).toEqual([gold, silver].sort());
    expect(alpha.plans.find((p) => p.usagePlanId === gold)).toEqual({
      id: federatedPlanId(alpha.id, gold),
      usagePlanId: gold,
      name: 'Gold',
      description: 'Premium',
      security: 'API_KEY',
      throttle: { rateLimit: 500, burstLimit: 1000 },
      quota: { limit: 1_000_000, period: 'MONTH' },
    });
    // the usage plan on two stages yields a plan on each, with distinct ids
    expect(beta.plans).toHaveLength(1);
    expect(beta.plans[0]!.usagePlanId).toBe(silver);
    expect(beta.plans[0]!.id).not.toBe(alpha.plans.find((p) => p.usagePlanId === silver)!.id);

    // definition: format detected from the document, stored by sha256, event carries the reference only
    // the proxy answers oas30 with OpenAPI 3.0.1, as API Gateway does (moto alone: Swagger 2.0, below)
    expect(alpha.definition?.format).toBe('openapi-3.0');
    const doc = (await h.definitions.getDocument(alpha.definition!.sha256)) as {
      openapi: string;
      paths: object;
    };
    expect(doc.openapi).toMatch(/^3\.0/);
    expect(Object.keys(doc.paths)).toContain('/items');
    const upserted = eventsOf({ summary, events }, EventType.API_UPSERTED).map(
      (e) => e.payload as FederatedApi,
    );
    expect(upserted.find((a) => a.id === alpha.id)).toEqual(alpha);
    expect(JSON.stringify(upserted)).not.toContain('"paths"');

    expect(await h.runs.latest()).toEqual(summary);
  });

  it('records the format the document has: Swagger 2.0 from moto itself', async () => {
    const direct = new DiscoveryEngine(
      {
        ...h.deps,
        apiGateway: (target) =>
          new APIGatewayClient(emu.clientConfig({ via: 'moto', region: target.region })),
      },
      {
        sources: [],
        acceptApiWithoutUsagePlan: false,
        labels: { include: [], exclude: [] },
        rateLimit: { ratePerSecond: 50, burst: 50 },
        concurrency: 1,
        defaultRegion: emu.region,
      },
    );
    await direct.run();
    const alpha = await h.catalog.getApi(idOf('a', 'prod'));
    expect(alpha?.definition?.format).toBe('swagger-2.0');
    const doc = (await h.definitions.getDocument(alpha!.definition!.sha256)) as { swagger?: string };
    expect(doc.swagger).toBe('2.0');
  });

  it('requests the export without integration or API Gateway extensions', async () => {
    await h.engine.run();
    const exports = emu.proxy.calls.list({ operation: 'GetExport' });
    expect(exports).toHaveLength(2);
    for (const call of exports)
      expect(call.path).toMatch(/^\/restapis\/[^/]+\/stages\/prod\/exports\/oas30$/);
    // the SDK sends `extensions` as a query parameter; the proxy records the path only, so check the
    // recorded document carries no integration extension either
    const [api] = await h.catalog.listByAccountRegion(emu.accountId, emu.region);
    const bytes = await h.definitions.get(api!.definition!.sha256);
    expect(new TextDecoder().decode(bytes)).not.toContain('x-amazon-apigateway-integration');
  });

  it('federates stages on no usage plan, without plans, only when acceptApiWithoutUsagePlan is set', async () => {
    const engine = h.withConfig({ acceptApiWithoutUsagePlan: true });
    const { summary } = await engine.run();
    // every API gets GetStages (d returns none), every deployed stage an export
    expect(apiCalls(emu)).toEqual({ GetRestApis: 1, GetUsagePlans: 1, GetStages: 4, GetExport: 4 });
    expect(summary.counts).toMatchObject({ discovered: 4, upserted: 4, skipped: 0 });
    const gamma = await h.catalog.getApi(idOf('c', 'prod'));
    expect(gamma?.plans).toEqual([]);
    const betaDev = await h.catalog.getApi(idOf('b', 'dev'));
    expect(betaDev?.plans).toEqual([]);
  });

  it('applies label include and exclude before reading stages (exclude wins)', async () => {
    const engine = h.withConfig({
      labels: { include: ['visibility=public', 'team=catalog'], exclude: ['team=catalog'] },
    });
    const { summary } = await engine.run();
    // b is excluded, c and d fail include or have no plan: only a's stages are read
    expect(apiCalls(emu)).toEqual({ GetRestApis: 1, GetUsagePlans: 1, GetStages: 1, GetExport: 1 });
    expect(summary.counts).toMatchObject({ discovered: 1, skipped: 3 });
    const catalog = await h.catalog.listByAccountRegion(emu.accountId, emu.region);
    expect(catalog.map((a) => a.id)).toEqual([idOf('a', 'prod')]);
  });

  it('matches a label filter entry without a value on the tag key', async () => {
    const engine = h.withConfig({ labels: { include: ['team'], exclude: ['visibility=internal'] } });
    await engine.run();
    const catalog = await h.catalog.listByAccountRegion(emu.accountId, emu.region);
    expect(catalog.map((a) => a.id)).toEqual([idOf('a', 'prod')]);
  });

  it('reruns with no change at zero exports and zero events', async () => {
    await h.engine.run();
    const seqBefore = await h.outbox.latestSeq();
    emu.proxy.resetCalls();
    const { summary, events } = await h.engine.run();
    expect(apiCalls(emu)).toEqual({ GetRestApis: 1, GetUsagePlans: 1, GetStages: 2 });
    expect(summary.counts).toMatchObject({
      discovered: 2,
      upserted: 0,
      unchanged: 2,
      removed: 0,
      exported: 0,
    });
    expect(events).toEqual([]);
    expect(await h.outbox.latestSeq()).toBe(seqBefore);
    expect(await h.runs.latest()).toEqual(summary);
  });

  it('re-exports everything with full, and upserts nothing whose document did not change', async () => {
    await h.engine.run();
    emu.proxy.resetCalls();
    const { summary } = await h.engine.run({ full: true });
    expect(apiCalls(emu)).toEqual({ GetRestApis: 1, GetUsagePlans: 1, GetStages: 2, GetExport: 2 });
    expect(summary.full).toBe(true);
    expect(summary.counts.exported).toBe(2);
    expect(summary.counts).toMatchObject({ upserted: 0, unchanged: 2 });
  });

  it('exports and upserts exactly the redeployed stage', async () => {
    await h.engine.run();
    const newDeployment = await redeployStage(emu.apiGateway(), seeded.apis.a!.restApiId, 'prod');
    emu.proxy.resetCalls();
    const result = await h.engine.run();
    expect(apiCalls(emu)).toEqual({ GetRestApis: 1, GetUsagePlans: 1, GetStages: 2, GetExport: 1 });
    expect(result.summary.counts).toMatchObject({ upserted: 1, unchanged: 1, exported: 1, removed: 0 });
    const upserted = eventsOf(result, EventType.API_UPSERTED);
    expect(upserted).toHaveLength(1);
    expect((upserted[0]!.payload as FederatedApi).source.deploymentId).toBe(newDeployment);
    expect(result.events.map((e) => e.event)).toEqual([
      EventType.API_UPSERTED,
      EventType.DISCOVERY_COMPLETED,
    ]);
    expect((await h.catalog.getApi(idOf('a', 'prod')))?.source.deploymentId).toBe(newDeployment);
  });

  it('removes a deleted API once, with its plans, and revokes their subscriptions', async () => {
    await h.engine.run();
    const beta = (await h.catalog.getApi(idOf('b', 'prod'))) as FederatedApi;
    const plan = beta.plans[0]!;
    await h.subscriptions.createPending(
      {
        subscriptionId: 'sub-1',
        apiId: beta.id,
        planId: plan.id,
        usagePlanId: plan.usagePlanId,
        accountId: emu.accountId,
        region: emu.region,
        application: { id: 'app-1', name: 'App 1' },
        keyMode: 'derived',
        secretVersionId: 'v1',
        requestHash: 'h',
      } as never,
      { owner: 'test', expiresAt: Date.now() + 60_000 },
    );
    await deleteApi(emu.apiGateway(), seeded.apis.b!.restApiId);
    emu.proxy.resetCalls();
    const result = await h.engine.run();
    expect(apiCalls(emu)).toEqual({ GetRestApis: 1, GetUsagePlans: 1, GetStages: 1 });
    expect(result.summary.counts).toMatchObject({ removed: 1, plansRemoved: 1, upserted: 0, unchanged: 1 });
    expect(result.events.map((e) => e.event)).toEqual([
      EventType.PLAN_REMOVED,
      EventType.SUBSCRIPTION_REVOKED,
      EventType.API_REMOVED,
      EventType.DISCOVERY_COMPLETED,
    ]);
    expect(eventsOf(result, EventType.PLAN_REMOVED)[0]!.payload).toEqual({
      apiId: beta.id,
      planId: plan.id,
      usagePlanId: plan.usagePlanId,
      subscriptionIds: ['sub-1'],
    });
    expect(eventsOf(result, EventType.SUBSCRIPTION_REVOKED)[0]!.payload).toEqual({
      subscriptionId: 'sub-1',
      apiId: beta.id,
      planId: plan.id,
      reason: 'PLAN_REMOVED',
      keyDeleted: false, // discovery's event; the subscriptions function's follows once the key is gone
    });
    expect(await h.subscriptions.get('sub-1')).toMatchObject({
      status: 'REVOKED',
      revokeReason: 'PLAN_REMOVED',
    });
    expect(eventsOf(result, EventType.API_REMOVED)[0]!.payload).toEqual({ id: beta.id, source: beta.source });
    expect(await h.catalog.getApi(beta.id)).toBeUndefined();

    // and only once
    const again = await h.engine.run();
    expect(again.events).toEqual([]);
  });

  it('revokes exactly the subscriptions its events report when a plan is removed', async () => {
    await h.engine.run();
    const beta = (await h.catalog.getApi(idOf('b', 'prod'))) as FederatedApi;
    const plan = beta.plans[0]!;
    const pending = (subscriptionId: string) =>
      h.subscriptions.createPending(
        {
          subscriptionId,
          apiId: beta.id,
          planId: plan.id,
          usagePlanId: plan.usagePlanId,
          accountId: emu.accountId,
          region: emu.region,
          application: { id: 'app-1', name: 'App 1' },
          keyMode: 'derived',
          secretVersionId: 'v1',
          requestHash: 'h',
        } as never,
        { owner: subscriptionId, expiresAt: Date.now() + 60_000 },
      );
    await pending('live');
    await pending('failed');
    await h.subscriptions.fail('failed', 'failed', { code: 'NOT_FOUND', message: 'x' }, { keyDeleted: true });
    await deleteApi(emu.apiGateway(), seeded.apis.b!.restApiId);
    const result = await h.engine.run();
    const reported = eventsOf(result, EventType.SUBSCRIPTION_REVOKED).map(
      (e) => (e.payload as { subscriptionId: string }).subscriptionId,
    );
    expect(reported).toEqual(['live']);
    expect(eventsOf(result, EventType.PLAN_REMOVED)[0]!.payload).toMatchObject({ subscriptionIds: ['live'] });
    // The ledger agrees with the events: what was not reported was not revoked.
    expect(await h.subscriptions.get('live')).toMatchObject({
      status: 'REVOKED',
      revokeReason: 'PLAN_REMOVED',
    });
    expect(await h.subscriptions.get('failed')).toMatchObject({ status: 'FAILED' });
  });

  it('reports a plan detached from a stage that stays federated', async () => {
    await h.engine.run();
    const alphaBefore = (await h.catalog.getApi(idOf('a', 'prod'))) as FederatedApi;
    const { UpdateUsagePlanCommand } = await import('@aws-sdk/client-api-gateway');
    await emu.apiGateway().send(
      new UpdateUsagePlanCommand({
        usagePlanId: seeded.usagePlans.gold!.usagePlanId,
        patchOperations: [{ op: 'remove', path: '/apiStages', value: `${seeded.apis.a!.restApiId}:prod` }],
      }),
    );
    const result = await h.engine.run();
    expect(result.events.map((e) => e.event)).toEqual([
      EventType.API_UPSERTED,
      EventType.PLAN_REMOVED,
      EventType.DISCOVERY_COMPLETED,
    ]);
    const goldPlan = alphaBefore.plans.find((p) => p.usagePlanId === seeded.usagePlans.gold!.usagePlanId)!;
    expect(eventsOf(result, EventType.PLAN_REMOVED)[0]!.payload).toMatchObject({
      apiId: alphaBefore.id,
      planId: goldPlan.id,
    });
    expect((await h.catalog.getApi(alphaBefore.id))?.plans).toHaveLength(1);
  });

  it('never removes on doubt: a failed export makes the run partial and removes nothing', async () => {
    await h.engine.run();
    await redeployStage(emu.apiGateway(), seeded.apis.a!.restApiId, 'prod');
    await deleteApi(emu.apiGateway(), seeded.apis.b!.restApiId);
    emu.proxy.resetCalls();
    emu.proxy.setFaults({ seed: 7, rates: { error503: 1 }, operations: ['GetExport'] });
    const result = await h.engine.run();
    // the export is retried (4 attempts) then given up
    expect(apiCalls(emu)).toEqual({ GetRestApis: 1, GetUsagePlans: 1, GetStages: 1, GetExport: 4 });
    expect(result.summary.partial).toBe(true);
    expect(result.summary.counts).toMatchObject({ removed: 0, upserted: 0 });
    expect(result.summary.errors).toEqual([
      expect.objectContaining({ region: 'us-east-1', accountId: emu.accountId, code: 'AWS_ERROR' }),
    ]);
    expect(result.events.map((e) => e.event)).toEqual([EventType.DISCOVERY_COMPLETED]);
    expect(await h.catalog.getApi(idOf('b', 'prod'))).toBeDefined();
  });

  it('federates an API whose export API Gateway refuses (4xx) without a definition; the run stays complete', async () => {
    const refused = seeded.apis.a!.restApiId;
    emu.proxy.refuseExports([refused]);
    const first = await h.engine.run();
    expect(first.summary.partial).toBe(false);
    expect(first.summary.errors).toEqual([]);
    expect(first.summary.counts).toMatchObject({ discovered: 2, upserted: 2, exported: 1, exportRefused: 1 });
    const alpha = (await h.catalog.getApi(idOf('a', 'prod'))) as FederatedApi;
    expect(alpha.definition).toBeUndefined();
    expect(alpha.definitionUnavailable).toEqual({
      code: 'EXPORT_REFUSED',
      message: expect.stringMatching(/^GetExport refused by API Gateway \(BadRequestException\)/),
      deploymentId: seeded.apis.a!.deploymentId,
    });
    // The event says so.
    const upserted = eventsOf(first, EventType.API_UPSERTED).map((e) => e.payload as FederatedApi);
    expect(upserted.find((a) => a.id === alpha.id)?.definitionUnavailable?.code).toBe('EXPORT_REFUSED');

    // Same deployment: no new attempt, nothing changes, and the account-region still removes what went.
    await deleteApi(emu.apiGateway(), seeded.apis.b!.restApiId);
    emu.proxy.resetCalls();
    const second = await h.engine.run();
    expect(apiCalls(emu).GetExport ?? 0).toBe(0);
    expect(second.summary.partial).toBe(false);
    expect(second.events.map((e) => e.event)).toEqual([
      EventType.PLAN_REMOVED,
      EventType.API_REMOVED,
      EventType.DISCOVERY_COMPLETED,
    ]);

    // A new deployment: the export is tried again (and API Gateway takes this one).
    emu.proxy.refuseExports(undefined);
    await redeployStage(emu.apiGateway(), refused, 'prod');
    emu.proxy.resetCalls();
    const third = await h.engine.run();
    expect(apiCalls(emu).GetExport).toBe(1);
    const after = (await h.catalog.getApi(idOf('a', 'prod'))) as FederatedApi;
    expect(after.definition?.format).toBe('openapi-3.0');
    expect(after.definitionUnavailable).toBeUndefined();
    expect(third.summary.counts).toMatchObject({ upserted: 1, exportRefused: 0 });
  });

  it('never removes on doubt: a failing account-region is partial, the other completes', async () => {
    // a second region with one API on a plan
    const west = await seed(emu.apiGateway({ region: 'us-west-2' }), {
      apis: [{ key: 'w', name: 'West', stages: ['prod'] }],
      usagePlans: [{ key: 'wp', name: 'West plan', stages: [{ api: 'w', stage: 'prod' }] }],
    });
    const engine = h.withConfig({ sources: [{ name: 'main', regions: ['us-east-1', 'us-west-2'] }] });
    await engine.run();
    expect(await h.catalog.listByAccountRegion(emu.accountId, 'us-west-2')).toHaveLength(1);

    await deleteApi(emu.apiGateway({ region: 'us-west-2' }), west.apis.w!.restApiId);
    await deleteApi(emu.apiGateway(), seeded.apis.b!.restApiId);
    // us-west-2 is refused: the policy allows the documented GETs in us-east-1 only
    const eastOnly = JSON.parse(
      JSON.stringify(GET_POLICY).replaceAll('arn:aws:apigateway:*::', 'arn:aws:apigateway:us-east-1::'),
    );
    emu.proxy.setPolicy(eastOnly);
    emu.proxy.resetCalls();
    const result = await engine.run();

    expect(result.summary.partial).toBe(true);
    const west2 = result.summary.accountRegions.find((r) => r.region === 'us-west-2')!;
    const east = result.summary.accountRegions.find((r) => r.region === 'us-east-1')!;
    expect(west2.status).toBe('failed');
    expect(east.status).toBe('complete');
    expect(east.counts.removed).toBe(1); // b, in the region read completely
    expect(west2.counts.removed).toBe(0);
    expect(result.summary.errors.map((e) => [e.region, e.code])).toEqual([
      ['us-west-2', 'AWS_ACCESS_DENIED'],
      ['us-west-2', 'AWS_ACCESS_DENIED'],
    ]);
    expect(await h.catalog.listByAccountRegion(emu.accountId, 'us-west-2')).toHaveLength(1);
    // access denied is not retried
    expect(emu.proxy.calls.byOperation({ region: 'us-west-2', service: 'apigateway' })).toEqual({
      GetRestApis: 1,
      GetUsagePlans: 1,
    });
  });

  it('runs behind the documented GET policy without a refused call', async () => {
    emu.proxy.setPolicy(GET_POLICY);
    const engine = h.withConfig({ acceptApiWithoutUsagePlan: true });
    const { summary } = await engine.run({ full: true });
    expect(summary.partial).toBe(false);
    expect(summary.counts.discovered).toBe(4);
    expect(emu.proxy.calls.count({ outcome: 'refused' })).toBe(0);
    expect(emu.proxy.calls.count({ service: 'apigateway' })).toBe(10);
    // and nothing but GET
    expect(new Set(emu.proxy.calls.list({ service: 'apigateway' }).map((c) => c.method))).toEqual(
      new Set(['GET']),
    );
  });

  it('survives throttling and 5xx faults, with the same catalog', async () => {
    emu.proxy.setFaults({
      seed: 42,
      rates: { throttle429: 0.2, throttle429RetryAfter: 0.05, error500: 0.1, reset: 0.05 },
    });
    const engine = h.withConfig(
      {},
      { retry: { baseDelayMs: 5, maxDelayMs: 20, maxAttempts: 10, maxRetryAfterMs: 50 } },
    );
    const { summary } = await engine.run();
    expect(summary.partial).toBe(false);
    expect(summary.counts.discovered).toBe(2);
    expect(summary.throttles).toBeGreaterThan(0);
    expect(emu.proxy.stats.faults.total).toBeGreaterThan(0);
  });

  it('keeps a second overlapping run of the same account-region from publishing', async () => {
    await h.leases.acquire(`discovery#${emu.accountId}#${emu.region}`, 'other-run', 60_000);
    await expect(h.engine.run()).rejects.toMatchObject({ code: 'BUSY' });
    expect(apiCalls(emu)).toEqual({});
    expect(await h.outbox.latestSeq()).toBe(0);
  });

  it('rejects an unknown source before any AWS call', async () => {
    await expect(h.engine.run({ sources: ['nope'] })).rejects.toMatchObject({ code: 'VALIDATION' });
    expect(emu.proxy.calls.count()).toBe(0);
  });
});
