/**
 * Shared set-up of the subscriptions tests: a ledger table, the HMAC secret and seeded API Gateway
 * state in the emulator, catalog entries for the seeded stages, and a SubscriptionService wired like
 * the function wires it — API Gateway through the fidelity proxy under the documented POST + DELETE
 * statements only.
 */
import { randomBytes } from 'node:crypto';
import {
  type APIGatewayClient,
  type ApiKey,
  GetApiKeysCommand,
  GetUsagePlanKeysCommand,
} from '@aws-sdk/client-api-gateway';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { type SeedResult, seed } from '../../emulator/seeder.js';
import {
  AwsClientFactory,
  CatalogRepository,
  createLedgerTable,
  type EmitEvents,
  type FederatedApi,
  FederationError,
  federatedApiId,
  federatedPlanId,
  type LedgerTable,
  Outbox,
  RateLimiterRegistry,
  SecretCache,
  SecretKeyMaterialProvider,
  type SubscriptionHooks,
  SubscriptionRepository,
  SubscriptionService,
} from '../../layers/federation-core/src/index.js';
import { type Emulator, startEmulator, TEST_CREDENTIALS } from '../support/emulator.js';

export const TABLE = 'ledger';
export const SECRET_NAME = 'apigw-federation/api-key-hmac';

/** The subscriptions role's statements of the documented policy (seed 000): POST + DELETE only. */
export const SUBSCRIPTIONS_POLICY = {
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow' as const,
      Action: ['apigateway:POST'],
      Resource: ['arn:aws:apigateway:*::/apikeys', 'arn:aws:apigateway:*::/usageplans/*/keys'],
    },
    {
      Effect: 'Allow' as const,
      Action: ['apigateway:DELETE'],
      Resource: ['arn:aws:apigateway:*::/apikeys/*'],
    },
  ],
};

export interface World {
  readonly table: LedgerTable;
  readonly catalog: CatalogRepository;
  readonly repo: SubscriptionRepository;
  readonly seeded: SeedResult;
  /** Catalog entries: `pets` (plans `gold`, `silver`) and `orders` (plan `basic`). */
  readonly apis: { pets: FederatedApi; orders: FederatedApi };
  readonly plans: { gold: string; silver: string; basic: string };
  readonly factory: AwsClientFactory;
  readonly keys: SecretKeyMaterialProvider;
  /** The ledger's outbox, and the service's `emit` appending to it as the function does (no relay). */
  readonly outbox: Outbox;
  readonly emit: EmitEvents;
  /** Unrestricted API Gateway client straight to moto, for assertions. */
  readonly raw: APIGatewayClient;
  /** A service like the function's; `secretTtlMs` gives it its own secret cache. */
  service(options?: {
    hooks?: SubscriptionHooks;
    secretTtlMs?: number;
    limiters?: RateLimiterRegistry;
    /** The service's clock (the repository keeps the real one). */
    now?: () => number;
  }): SubscriptionService;
}

function catalogEntry(
  emu: Emulator,
  seeded: SeedResult,
  apiKey: string,
  planKeys: readonly string[],
): FederatedApi {
  const api = seeded.apis[apiKey]!;
  const id = federatedApiId(emu.accountId, emu.region, api.restApiId, 'prod');
  return {
    id,
    name: api.name,
    version: 'prod',
    source: {
      name: 'default',
      accountId: emu.accountId,
      region: emu.region,
      restApiId: api.restApiId,
      stageName: 'prod',
      deploymentId: api.deploymentId!,
    },
    endpoint: `https://${api.restApiId}.execute-api.${emu.region}.amazonaws.com/prod`,
    labels: [],
    plans: planKeys.map((key) => {
      const usagePlanId = seeded.usagePlans[key]!.usagePlanId;
      return { id: federatedPlanId(id, usagePlanId), usagePlanId, name: key, security: 'API_KEY' as const };
    }),
    fingerprint: 'test',
    updatedAt: new Date().toISOString(),
  };
}

/**
 * The set-up of a test file: one emulator for the file (started before all, stopped after all) and a
 * fresh world before each test, handed to `each` (which keeps what it needs: the emulator, the world,
 * the services built on it).
 */
export function withEmulatorWorld(each: (emu: Emulator, world: World) => void | Promise<void>): void {
  let emu: Emulator | undefined;
  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu?.stop();
  });
  beforeEach(async () => {
    const started = emu as Emulator;
    await each(started, await buildWorld(started));
  });
}

/** The FederationError code `promise` fails with, or `OK` when it succeeds (another error is thrown). */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof FederationError) return error.code;
    throw error;
  }
  return 'OK';
}

/** The application the subscribe tests subscribe. */
export const APP = { id: 'app-42', name: 'Mobile app' };

/** A subscribe request (`sub-1`, the pets API, the gold plan, {@link APP}), with `overrides`. */
export function goldRequest(world: World, overrides: Record<string, unknown> = {}) {
  return {
    subscriptionId: 'sub-1',
    apiId: world.apis.pets.id,
    planId: world.plans.gold,
    application: APP,
    ...overrides,
  };
}

/** Resets the emulator and builds the world; the policy is on when this returns. */
export async function buildWorld(emu: Emulator): Promise<World> {
  await emu.reset();
  const db = emu.dynamoDb();
  await createLedgerTable(db, TABLE);
  const table: LedgerTable = {
    client: DynamoDBDocumentClient.from(db, { marshallOptions: { removeUndefinedValues: true } }),
    tableName: TABLE,
  };
  const secrets = new SecretsManagerClient(emu.clientConfig({ via: 'moto' }));
  await secrets.send(
    new CreateSecretCommand({ Name: SECRET_NAME, SecretString: randomBytes(48).toString('base64') }),
  );
  const raw = emu.apiGateway();
  const seeded = await seed(raw, {
    apis: [
      { key: 'pets', name: 'Pets', stages: ['prod'], models: [] },
      { key: 'orders', name: 'Orders', stages: ['prod'], models: [] },
    ],
    usagePlans: [
      { key: 'gold', name: 'Gold', stages: [{ api: 'pets', stage: 'prod' }] },
      { key: 'silver', name: 'Silver', stages: [{ api: 'pets', stage: 'prod' }] },
      { key: 'basic', name: 'Basic', stages: [{ api: 'orders', stage: 'prod' }] },
    ],
  });
  const catalog = new CatalogRepository(table);
  const apis = {
    pets: catalogEntry(emu, seeded, 'pets', ['gold', 'silver']),
    orders: catalogEntry(emu, seeded, 'orders', ['basic']),
  };
  await catalog.putApi(apis.pets);
  await catalog.putApi(apis.orders);
  const plans = {
    gold: apis.pets.plans[0]!.id,
    silver: apis.pets.plans[1]!.id,
    basic: apis.orders.plans[0]!.id,
  };
  // The code under test talks to the proxy: API Gateway under the policy, everything else passes.
  const factory = new AwsClientFactory({
    region: emu.region,
    endpoint: emu.endpoint,
    credentials: { ...TEST_CREDENTIALS },
  });
  const keys = new SecretKeyMaterialProvider(new SecretCache(factory.secretsManager()), SECRET_NAME);
  const repo = new SubscriptionRepository({ client: factory.dynamoDocument(), tableName: TABLE });
  const limiters = new RateLimiterRegistry({ ratePerSecond: 10, burst: 40 });
  // Through the proxy, like the function's (the service's repository too).
  const outbox = new Outbox({ client: factory.dynamoDocument(), tableName: TABLE }, { retentionDays: 7 });
  emu.proxy.setPolicy(SUBSCRIPTIONS_POLICY);
  emu.proxy.resetCalls();
  return {
    outbox,
    emit: (events, options) => outbox.append(events, options),
    table,
    catalog,
    repo,
    seeded,
    apis,
    plans,
    factory,
    keys,
    raw,
    service: (options = {}) =>
      new SubscriptionService({
        catalog: new CatalogRepository({ client: factory.dynamoDocument(), tableName: TABLE }),
        subscriptions: repo,
        apiGateway: (target) => factory.apiGateway(target),
        sources: [{ name: 'default' }],
        keys:
          options.secretTtlMs === undefined
            ? keys
            : new SecretKeyMaterialProvider(
                new SecretCache(factory.secretsManager(), { ttlMs: options.secretTtlMs }),
                SECRET_NAME,
              ),
        limiters: options.limiters ?? limiters,
        retry: { baseDelayMs: 5, maxDelayMs: 50 },
        hooks: options.hooks,
        ...(options.now ? { now: options.now } : {}),
      }),
  };
}

/** Every API key in moto, with values (unrestricted client). */
export async function allKeys(raw: APIGatewayClient): Promise<ApiKey[]> {
  const keys: ApiKey[] = [];
  let position: string | undefined;
  do {
    const page = await raw.send(new GetApiKeysCommand({ includeValues: true, limit: 500, position }));
    keys.push(...(page.items ?? []));
    position = page.position;
  } while (position);
  return keys;
}

/** Key ids on a usage plan that still exist (moto keeps usage plan keys of deleted keys). */
export async function keysOnPlan(raw: APIGatewayClient, usagePlanId: string): Promise<string[]> {
  const existing = new Set((await allKeys(raw)).map((k) => k.id));
  const out = await raw.send(new GetUsagePlanKeysCommand({ usagePlanId, limit: 500 }));
  return (out.items ?? []).map((k) => k.id!).filter((id) => existing.has(id));
}

/** Every item of the ledger table as JSON text (to prove no key value is stored). */
export async function ledgerDump(table: LedgerTable): Promise<string> {
  const out = await table.client.send(new ScanCommand({ TableName: table.tableName }));
  return JSON.stringify(out.Items ?? []);
}

/** API Gateway calls that write (POST, PUT, PATCH, DELETE) seen by the proxy. */
export function apiGatewayWrites(emu: Emulator): number {
  return emu.proxy.calls.list({ service: 'apigateway' }).filter((c) => c.method !== 'GET').length;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
