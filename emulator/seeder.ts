/**
 * Builds realistic API Gateway state (REST APIs with resources, methods, MOCK integrations and models,
 * deployments, stages, tags, usage plans with throttle and quota) through the AWS SDK v3, from a
 * compact description. Used by the tests, the benchmark and `npm start`.
 *
 * Point the client at moto directly (not through the fidelity proxy): seeding is set-up, not traffic.
 *
 * Calls per API: CreateRestApi (with tags) + PutRestApi (OpenAPI 3 body: resources, methods,
 * integrations) + CreateModel per model + CreateDeployment (creates the first stage) + CreateStage per
 * further stage. Then CreateUsagePlan per plan (stages attached in the same call). Bounded concurrency.
 */
import {
  type APIGatewayClient,
  CreateDeploymentCommand,
  CreateModelCommand,
  CreateRestApiCommand,
  CreateStageCommand,
  CreateUsagePlanCommand,
  DeleteRestApiCommand,
  PutRestApiCommand,
  UpdateStageCommand,
} from '@aws-sdk/client-api-gateway';
import { mapPool } from '../layers/federation-core/src/pool.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD' | 'OPTIONS';

export interface SeedResource {
  /** Full path, e.g. `/pets/{id}`. Parents are created implicitly. Not `/`. */
  path: string;
  methods: HttpMethod[];
}

export interface SeedModel {
  name: string;
  description?: string;
  /** JSON schema (draft 4) of the model. */
  schema: Record<string, unknown>;
}

export interface SeedApi {
  /** Caller's handle for this API in the description and the result. */
  key: string;
  name: string;
  description?: string;
  tags?: Record<string, string>;
  /** Default: a small pets-style set (`/items` GET POST, `/items/{id}` GET PUT DELETE). */
  resources?: SeedResource[];
  /** Default: one `Item` model. `[]` for none. */
  models?: SeedModel[];
  /** Stage names; the first is created with the deployment, the others point at the same deployment. `[]` = not deployed. */
  stages: string[];
}

export interface SeedUsagePlan {
  key: string;
  name: string;
  description?: string;
  throttle?: { rateLimit: number; burstLimit: number };
  quota?: { limit: number; period: 'DAY' | 'WEEK' | 'MONTH'; offset?: number };
  /** Stages attached to the plan, by API key and stage name. */
  stages: Array<{ api: string; stage: string }>;
}

export interface SeedDescription {
  apis: SeedApi[];
  usagePlans?: SeedUsagePlan[];
}

export interface SeededApi {
  key: string;
  restApiId: string;
  name: string;
  stages: string[];
  /** The deployment all seeded stages point at (undefined when not deployed). */
  deploymentId?: string;
  /** stage name → deployment id */
  deployments: Record<string, string>;
}

export interface SeededUsagePlan {
  key: string;
  usagePlanId: string;
  name: string;
  stages: Array<{ restApiId: string; stage: string }>;
}

export interface SeedResult {
  apis: Record<string, SeededApi>;
  usagePlans: Record<string, SeededUsagePlan>;
  /** Number of API Gateway calls made. */
  calls: number;
  durationMs: number;
}

export interface SeedOptions {
  /** Concurrent API builds, default 16. */
  concurrency?: number;
}

export const DEFAULT_RESOURCES: SeedResource[] = [
  { path: '/items', methods: ['GET', 'POST'] },
  { path: '/items/{id}', methods: ['GET', 'PUT', 'DELETE'] },
];

export const DEFAULT_MODELS: SeedModel[] = [
  {
    name: 'Item',
    description: 'An item of the collection',
    schema: {
      $schema: 'http://json-schema.org/draft-04/schema#',
      title: 'Item',
      type: 'object',
      required: ['id', 'name'],
      properties: {
        id: { type: 'string' },
        name: { type: 'string' },
        createdAt: { type: 'string', format: 'date-time' },
      },
    },
  },
];

/** The OpenAPI 3 body given to PutRestApi: every method gets a MOCK integration and a 200 response. */
export function openApiFor(api: SeedApi): Record<string, unknown> {
  const resources = api.resources ?? DEFAULT_RESOURCES;
  const models = api.models ?? DEFAULT_MODELS;
  const modelRef = models[0] ? { $ref: `#/components/schemas/${models[0].name}` } : { type: 'object' };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const resource of resources) {
    if (!resource.path.startsWith('/') || resource.path === '/') {
      throw new Error(`seed resource path must start with / and not be the root: ${resource.path}`);
    }
    const operations: Record<string, unknown> = {};
    const params = [...resource.path.matchAll(/\{([^}]+)\}/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    for (const method of resource.methods) {
      operations[method.toLowerCase()] = {
        operationId: `${method.toLowerCase()}${resource.path.replace(/[^A-Za-z0-9]+(.)?/g, (_, c?: string) => (c ?? '').toUpperCase())}`,
        ...(params.length > 0 ? { parameters: params } : {}),
        responses: {
          '200': {
            description: '200 response',
            content: { 'application/json': { schema: modelRef } },
          },
        },
        'x-amazon-apigateway-integration': {
          type: 'mock',
          httpMethod: method,
          uri: '',
          passthroughBehavior: 'when_no_match',
          requestTemplates: { 'application/json': '{"statusCode": 200}' },
          responses: { default: { statusCode: '200' } },
        },
      };
    }
    paths[resource.path] = operations;
  }
  return {
    openapi: '3.0.1',
    info: { title: api.name, description: api.description ?? '', version: '1.0.0' },
    paths,
    components: { schemas: Object.fromEntries(models.map((m) => [m.name, m.schema])) },
  };
}

/** Seeds `description` into the API Gateway behind `client`. */
export async function seed(
  client: APIGatewayClient,
  description: SeedDescription,
  options: SeedOptions = {},
): Promise<SeedResult> {
  const started = performance.now();
  const concurrency = options.concurrency ?? 16;
  let calls = 0;
  const send: APIGatewayClient['send'] = ((command: Parameters<APIGatewayClient['send']>[0]) => {
    calls++;
    return client.send(command);
  }) as APIGatewayClient['send'];

  const keys = new Set<string>();
  for (const api of description.apis) {
    if (keys.has(api.key)) throw new Error(`duplicate seed api key: ${api.key}`);
    keys.add(api.key);
  }

  const seededApis = await mapPool(description.apis, concurrency, async (api): Promise<SeededApi> => {
    const created = await send(
      new CreateRestApiCommand({
        name: api.name,
        description: api.description,
        tags: api.tags,
        endpointConfiguration: { types: ['REGIONAL'] },
      }),
    );
    const restApiId = created.id!;
    await send(
      new PutRestApiCommand({
        restApiId,
        mode: 'overwrite',
        body: new TextEncoder().encode(JSON.stringify(openApiFor(api))),
      }),
    );
    for (const model of api.models ?? DEFAULT_MODELS) {
      await send(
        new CreateModelCommand({
          restApiId,
          name: model.name,
          description: model.description,
          contentType: 'application/json',
          schema: JSON.stringify(model.schema),
        }),
      );
    }
    const deployments: Record<string, string> = {};
    let deploymentId: string | undefined;
    const [first, ...others] = api.stages;
    if (first !== undefined) {
      const deployment = await send(
        new CreateDeploymentCommand({ restApiId, stageName: first, description: 'initial deployment' }),
      );
      deploymentId = deployment.id!;
      deployments[first] = deploymentId;
      for (const stageName of others) {
        await send(new CreateStageCommand({ restApiId, stageName, deploymentId }));
        deployments[stageName] = deploymentId;
      }
    }
    return { key: api.key, restApiId, name: api.name, stages: [...api.stages], deploymentId, deployments };
  });

  const apis: Record<string, SeededApi> = Object.fromEntries(seededApis.map((a) => [a.key, a]));

  const plans = await mapPool(
    description.usagePlans ?? [],
    concurrency,
    async (plan): Promise<SeededUsagePlan> => {
      const stages = plan.stages.map(({ api, stage }) => {
        const seeded = apis[api];
        if (!seeded) throw new Error(`usage plan ${plan.key}: unknown api key ${api}`);
        if (!seeded.stages.includes(stage))
          throw new Error(`usage plan ${plan.key}: api ${api} has no stage ${stage}`);
        return { restApiId: seeded.restApiId, stage };
      });
      const created = await send(
        new CreateUsagePlanCommand({
          name: plan.name,
          description: plan.description,
          throttle: plan.throttle,
          quota: plan.quota,
          apiStages: stages.map((s) => ({ apiId: s.restApiId, stage: s.stage })),
        }),
      );
      return { key: plan.key, usagePlanId: created.id!, name: plan.name, stages };
    },
  );

  return {
    apis,
    usagePlans: Object.fromEntries(plans.map((p) => [p.key, p])),
    calls,
    durationMs: performance.now() - started,
  };
}

/**
 * Points a stage at a new deployment (CreateDeployment + UpdateStage `/deploymentId`), as a real
 * redeploy does. Returns the new deployment id.
 */
export async function redeployStage(
  client: APIGatewayClient,
  restApiId: string,
  stageName: string,
): Promise<string> {
  const deployment = await client.send(
    new CreateDeploymentCommand({
      restApiId,
      description: `redeploy of ${stageName} at ${new Date().toISOString()}`,
    }),
  );
  const deploymentId = deployment.id!;
  await client.send(
    new UpdateStageCommand({
      restApiId,
      stageName,
      patchOperations: [{ op: 'replace', path: '/deploymentId', value: deploymentId }],
    }),
  );
  return deploymentId;
}

/** Deletes a REST API (and with it its stages). */
export async function deleteApi(client: APIGatewayClient, restApiId: string): Promise<void> {
  await client.send(new DeleteRestApiCommand({ restApiId }));
}

export interface GenerateSeedOptions {
  /** Number of REST APIs. */
  apis: number;
  /** Stage names of every API, default `['dev', 'prod']`. */
  stages?: string[];
  /** Usage plans created per stage, default 1. Plans are named `plan-<api>-<stage>-<n>`. */
  plansPerStage?: number;
  /** Number of APIs (the last ones) attached to no usage plan, default 0. */
  withoutPlan?: number;
  /** Name prefix, default `api`. */
  prefix?: string;
  /** Resources of every API (default {@link DEFAULT_RESOURCES}). */
  resources?: SeedResource[];
  /** Models of every API, default `[]` (one call fewer per API). */
  models?: SeedModel[];
  /** Extra tags on every API; each also gets `team` and `visibility` tags alternating. */
  tags?: Record<string, string>;
}

/** A large, regular scenario: `apis` APIs, each with `stages`, `plansPerStage` plans on each stage. */
export function generateSeed(options: GenerateSeedOptions): SeedDescription {
  const stages = options.stages ?? ['dev', 'prod'];
  const plansPerStage = options.plansPerStage ?? 1;
  const withoutPlan = options.withoutPlan ?? 0;
  const prefix = options.prefix ?? 'api';
  const teams = ['payments', 'catalog', 'platform', 'identity'];
  const width = String(Math.max(options.apis - 1, 0)).length;
  const apis: SeedApi[] = [];
  const usagePlans: SeedUsagePlan[] = [];
  for (let i = 0; i < options.apis; i++) {
    const key = `${prefix}-${String(i).padStart(width, '0')}`;
    apis.push({
      key,
      name: key,
      description: `Generated API number ${i}`,
      tags: {
        team: teams[i % teams.length]!,
        visibility: i % 3 === 2 ? 'internal' : 'public',
        ...options.tags,
      },
      resources: options.resources,
      models: options.models ?? [],
      stages,
    });
    if (i >= options.apis - withoutPlan) continue;
    for (const stage of stages) {
      for (let n = 0; n < plansPerStage; n++) {
        usagePlans.push({
          key: `plan-${key}-${stage}-${n}`,
          name: `plan-${key}-${stage}-${n}`,
          description: `Plan ${n} of ${key}/${stage}`,
          throttle: { rateLimit: 10 * (n + 1), burstLimit: 20 * (n + 1) },
          quota: { limit: 1000 * (n + 1), period: 'MONTH' },
          stages: [{ api: key, stage }],
        });
      }
    }
  }
  return { apis, usagePlans };
}

const petModel: SeedModel = {
  name: 'Pet',
  description: 'A pet in the store',
  schema: {
    $schema: 'http://json-schema.org/draft-04/schema#',
    title: 'Pet',
    type: 'object',
    required: ['id', 'name'],
    properties: {
      id: { type: 'integer' },
      name: { type: 'string' },
      type: { type: 'string', enum: ['dog', 'cat', 'fish'] },
      price: { type: 'number' },
    },
  },
};

const orderModel: SeedModel = {
  name: 'Order',
  description: 'A customer order',
  schema: {
    $schema: 'http://json-schema.org/draft-04/schema#',
    title: 'Order',
    type: 'object',
    required: ['orderId', 'lines'],
    properties: {
      orderId: { type: 'string' },
      status: { type: 'string', enum: ['PLACED', 'PAID', 'SHIPPED', 'CANCELLED'] },
      lines: {
        type: 'array',
        items: { type: 'object', properties: { sku: { type: 'string' }, quantity: { type: 'integer' } } },
      },
    },
  },
};

const paymentModel: SeedModel = {
  name: 'Payment',
  description: 'A payment attempt',
  schema: {
    $schema: 'http://json-schema.org/draft-04/schema#',
    title: 'Payment',
    type: 'object',
    required: ['paymentId', 'amount', 'currency'],
    properties: {
      paymentId: { type: 'string' },
      amount: { type: 'number' },
      currency: { type: 'string', pattern: '^[A-Z]{3}$' },
      status: { type: 'string', enum: ['AUTHORIZED', 'CAPTURED', 'REFUNDED', 'FAILED'] },
    },
  },
};

const stockModel: SeedModel = {
  name: 'StockLevel',
  description: 'Stock of one SKU in one warehouse',
  schema: {
    $schema: 'http://json-schema.org/draft-04/schema#',
    title: 'StockLevel',
    type: 'object',
    required: ['sku', 'warehouse', 'quantity'],
    properties: { sku: { type: 'string' }, warehouse: { type: 'string' }, quantity: { type: 'integer' } },
  },
};

const auditModel: SeedModel = {
  name: 'AuditEvent',
  description: 'An audit trail entry',
  schema: {
    $schema: 'http://json-schema.org/draft-04/schema#',
    title: 'AuditEvent',
    type: 'object',
    required: ['eventId', 'actor', 'action'],
    properties: {
      eventId: { type: 'string' },
      actor: { type: 'string' },
      action: { type: 'string' },
      at: { type: 'string', format: 'date-time' },
    },
  },
};

/**
 * The demo data for `npm start`: five APIs, `dev` and `prod` stages, Bronze/Silver/Gold plans.
 * - `petstore/prod` is on two plans (Silver and Gold);
 * - `audit` (Internal Audit) is on no plan, and tagged `visibility=internal`;
 * - every API has `team` and `visibility` tags (used as labels).
 */
export function demoSeed(): SeedDescription {
  return {
    apis: [
      {
        key: 'petstore',
        name: 'Petstore',
        description: 'Browse, adopt and manage pets of the store.',
        tags: { team: 'catalog', visibility: 'public', domain: 'retail' },
        resources: [
          { path: '/pets', methods: ['GET', 'POST'] },
          { path: '/pets/{petId}', methods: ['GET', 'PUT', 'DELETE'] },
          { path: '/pets/{petId}/photos', methods: ['GET', 'POST'] },
        ],
        models: [petModel],
        stages: ['dev', 'prod'],
      },
      {
        key: 'orders',
        name: 'Orders',
        description: 'Place and track customer orders.',
        tags: { team: 'commerce', visibility: 'public', domain: 'retail' },
        resources: [
          { path: '/orders', methods: ['GET', 'POST'] },
          { path: '/orders/{orderId}', methods: ['GET', 'PATCH'] },
          { path: '/orders/{orderId}/cancel', methods: ['POST'] },
        ],
        models: [orderModel],
        stages: ['dev', 'prod'],
      },
      {
        key: 'payments',
        name: 'Payments',
        description: 'Authorize, capture and refund card payments.',
        tags: { team: 'payments', visibility: 'public', compliance: 'pci' },
        resources: [
          { path: '/payments', methods: ['POST'] },
          { path: '/payments/{paymentId}', methods: ['GET'] },
          { path: '/payments/{paymentId}/refunds', methods: ['POST'] },
        ],
        models: [paymentModel],
        stages: ['dev', 'prod'],
      },
      {
        key: 'inventory',
        name: 'Inventory',
        description: 'Stock levels per SKU and warehouse.',
        tags: { team: 'logistics', visibility: 'public' },
        resources: [
          { path: '/stock', methods: ['GET'] },
          { path: '/stock/{sku}', methods: ['GET', 'PUT'] },
          { path: '/warehouses', methods: ['GET'] },
        ],
        models: [stockModel],
        stages: ['dev', 'prod'],
      },
      {
        key: 'audit',
        name: 'Internal Audit',
        description: 'Read-only audit trail for internal tooling.',
        tags: { team: 'security', visibility: 'internal' },
        resources: [
          { path: '/events', methods: ['GET'] },
          { path: '/events/{eventId}', methods: ['GET'] },
        ],
        models: [auditModel],
        stages: ['dev', 'prod'],
      },
    ],
    usagePlans: [
      {
        key: 'bronze',
        name: 'Bronze',
        description: 'Free tier: low rate, daily quota.',
        throttle: { rateLimit: 5, burstLimit: 10 },
        quota: { limit: 1000, period: 'DAY' },
        stages: [
          { api: 'petstore', stage: 'dev' },
          { api: 'orders', stage: 'dev' },
          { api: 'inventory', stage: 'prod' },
        ],
      },
      {
        key: 'silver',
        name: 'Silver',
        description: 'Standard tier for partner applications.',
        throttle: { rateLimit: 50, burstLimit: 100 },
        quota: { limit: 100000, period: 'WEEK' },
        stages: [
          { api: 'petstore', stage: 'prod' },
          { api: 'orders', stage: 'prod' },
          { api: 'payments', stage: 'dev' },
        ],
      },
      {
        key: 'gold',
        name: 'Gold',
        description: 'Premium tier: high rate, monthly quota.',
        throttle: { rateLimit: 500, burstLimit: 1000 },
        quota: { limit: 10000000, period: 'MONTH' },
        stages: [
          { api: 'petstore', stage: 'prod' },
          { api: 'payments', stage: 'prod' },
        ],
      },
    ],
  };
}
