import {
  GetExportCommand,
  GetRestApisCommand,
  GetStagesCommand,
  GetUsagePlansCommand,
} from '@aws-sdk/client-api-gateway';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deleteApi, demoSeed, generateSeed, redeployStage, seed } from '../../emulator/seeder.js';
import { type Emulator, startEmulator } from '../support/emulator.js';

describe('seeder', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu?.stop();
  });
  beforeEach(async () => {
    await emu.reset();
  });

  it('demo seed: tags, a stage on two plans, an API on no plan, throttle and quota', async () => {
    const client = emu.apiGateway();
    const result = await seed(client, demoSeed());
    expect(Object.keys(result.apis)).toEqual(['petstore', 'orders', 'payments', 'inventory', 'audit']);

    const apis = (await client.send(new GetRestApisCommand({ limit: 500 }))).items ?? [];
    expect(apis).toHaveLength(5);
    const audit = apis.find((a) => a.id === result.apis.audit!.restApiId)!;
    expect(audit.name).toBe('Internal Audit');
    expect(audit.tags).toMatchObject({ team: 'security', visibility: 'internal' });
    for (const api of apis) expect(api.tags?.visibility).toMatch(/^(public|internal)$/);

    const plans = (await client.send(new GetUsagePlansCommand({ limit: 500 }))).items ?? [];
    expect(plans.map((p) => p.name).sort()).toEqual(['Bronze', 'Gold', 'Silver']);
    const attachments = new Map<string, string[]>();
    for (const plan of plans) {
      for (const s of plan.apiStages ?? []) {
        const key = `${s.apiId}/${s.stage}`;
        attachments.set(key, [...(attachments.get(key) ?? []), plan.name!]);
      }
    }
    const petProd = `${result.apis.petstore!.restApiId}/prod`;
    expect(attachments.get(petProd)?.sort()).toEqual(['Gold', 'Silver']);
    const auditId = result.apis.audit!.restApiId;
    expect([...attachments.keys()].some((k) => k.startsWith(`${auditId}/`))).toBe(false);
    const gold = plans.find((p) => p.name === 'Gold')!;
    expect(gold.throttle).toMatchObject({ rateLimit: 500, burstLimit: 1000 });
    expect(gold.quota).toMatchObject({ limit: 10000000, period: 'MONTH' });

    const stages = (await client.send(new GetStagesCommand({ restApiId: result.apis.petstore!.restApiId })))
      .item;
    expect(stages?.map((s) => s.stageName).sort()).toEqual(['dev', 'prod']);
    expect(stages?.every((s) => s.deploymentId === result.apis.petstore!.deploymentId)).toBe(true);

    const exported = await client.send(
      new GetExportCommand({
        restApiId: result.apis.petstore!.restApiId,
        stageName: 'prod',
        exportType: 'oas30',
        accepts: 'application/json',
      }),
    );
    const doc = JSON.parse(new TextDecoder().decode(exported.body)) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/pets', '/pets/{petId}']));
  });

  it('exports through the proxy like API Gateway: OpenAPI 3, models, stable version, unknown stage refused', async () => {
    const result = await seed(emu.apiGateway(), demoSeed());
    const client = emu.apiGateway({ via: 'proxy' });
    const restApiId = result.apis.petstore!.restApiId;
    const exportOnce = async () =>
      new TextDecoder().decode(
        (
          await client.send(
            new GetExportCommand({
              restApiId,
              stageName: 'prod',
              exportType: 'oas30',
              accepts: 'application/json',
            }),
          )
        ).body,
      );
    const first = await exportOnce();
    const doc = JSON.parse(first) as {
      openapi: string;
      info: { title: string; version: string };
      servers: Array<{ variables: { basePath: { default: string } } }>;
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, unknown> };
    };
    expect(doc.openapi).toBe('3.0.1');
    expect(doc.info.title).toBe('Petstore');
    expect(doc.servers[0]!.variables.basePath.default).toBe('prod');
    expect(Object.keys(doc.paths['/pets/{petId}']!).sort()).toEqual(['delete', 'get', 'put']);
    expect(doc.components.schemas.Pet).toMatchObject({ title: 'Pet', type: 'object' });
    await new Promise((r) => setTimeout(r, 1100));
    expect(await exportOnce()).toBe(first);
    await expect(
      client.send(new GetExportCommand({ restApiId, stageName: 'nope', exportType: 'oas30' })),
    ).rejects.toMatchObject({ name: 'NotFoundException', $metadata: { httpStatusCode: 404 } });
  });

  it('redeployStage points one stage at a new deployment; deleteApi removes the API', async () => {
    const client = emu.apiGateway();
    const result = await seed(client, demoSeed());
    const orders = result.apis.orders!;
    const newDeployment = await redeployStage(client, orders.restApiId, 'prod');
    expect(newDeployment).not.toBe(orders.deploymentId);
    const stages = (await client.send(new GetStagesCommand({ restApiId: orders.restApiId }))).item ?? [];
    expect(stages.find((s) => s.stageName === 'prod')?.deploymentId).toBe(newDeployment);
    expect(stages.find((s) => s.stageName === 'dev')?.deploymentId).toBe(orders.deploymentId);

    await deleteApi(client, orders.restApiId);
    const apis = (await client.send(new GetRestApisCommand({ limit: 500 }))).items ?? [];
    expect(apis.map((a) => a.id)).not.toContain(orders.restApiId);
    expect(apis).toHaveLength(4);
  });

  it('generateSeed: plans per stage and APIs without a plan', () => {
    const description = generateSeed({ apis: 10, plansPerStage: 2, withoutPlan: 3 });
    expect(description.apis).toHaveLength(10);
    expect(description.usagePlans).toHaveLength(7 * 2 * 2);
    const planned = new Set(description.usagePlans!.flatMap((p) => p.stages.map((s) => s.api)));
    expect(planned.size).toBe(7);
  });

  // Seeding speed is a benchmark figure (npm run bench prints each scenario's seeding time); this
  // checks that a catalog past one page of every listing is seeded whole.
  it('seeds a catalog past one page: 600 APIs, 1,000 usage plans', async () => {
    const client = emu.apiGateway();
    const result = await seed(client, generateSeed({ apis: 600, withoutPlan: 100 }));
    expect(Object.keys(result.apis)).toHaveLength(600);
    expect(Object.keys(result.usagePlans)).toHaveLength(1000);
    const apis = (await client.send(new GetRestApisCommand({}))).items ?? [];
    expect(apis).toHaveLength(600);
  }, 120_000);
});
