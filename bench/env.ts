/**
 * The benchmark's emulated AWS: one moto server and one fidelity proxy for the whole run, the four
 * account-regions of every scenario (2 accounts × 2 regions, the second account reached through an
 * assumed role), the scenario seeds, the ledger table and the agent's secrets.
 */
import { randomBytes } from 'node:crypto';
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { type MotoServer, resetMoto, startMoto } from '../emulator/moto.js';
import {
  API_KEY_OPERATION_QUOTAS,
  DEFAULT_ACCOUNT_ID,
  type FidelityProxy,
  startFidelityProxy,
} from '../emulator/proxy.js';
import { generateSeed, type SeedDescription, type SeedResult, seed } from '../emulator/seeder.js';
import type { AgentConfigInput } from '../layers/federation-core/src/index.js';
import { createLedgerTable } from '../layers/federation-core/src/index.js';

export const REGION = 'us-east-1';
export const CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' } as const;
export const MEMBER_ACCOUNT_ID = '210987654321';
export const MEMBER_ROLE_ARN = `arn:aws:iam::${MEMBER_ACCOUNT_ID}:role/federation-discovery`;
/** API Gateway's management-API limit per account-region, enforced by the proxy and used by the agent. */
export const THROTTLE = { ratePerSecond: 10, burst: 40 } as const;
/**
 * The key operations' own quota (`CreateApiKey`, `DeleteApiKey`: 5 requests/s), enforced by the proxy and
 * given whole to the agent's key bucket (`apiKeyRateLimit`), as `THROTTLE` is to its account bucket.
 */
export const KEY_THROTTLE = API_KEY_OPERATION_QUOTAS.CreateApiKey;
/** Latency the proxy adds to every API Gateway call. */
export const LATENCY_MS = 20;
/** Share of APIs attached to no usage plan (the rest have a plan on every stage). */
export const WITHOUT_PLAN_SHARE = 0.1;

export interface AccountRegion {
  readonly source: string;
  readonly accountId: string;
  readonly region: string;
  readonly roleArn?: string;
  /** `<accountId>/<region>`, as the proxy counts. */
  readonly key: string;
}

const REGIONS = ['us-east-1', 'eu-west-1'] as const;

export const ACCOUNT_REGIONS: readonly AccountRegion[] = [
  ...REGIONS.map((region) => ({
    source: 'home',
    accountId: DEFAULT_ACCOUNT_ID,
    region,
    key: `${DEFAULT_ACCOUNT_ID}/${region}`,
  })),
  ...REGIONS.map((region) => ({
    source: 'member',
    accountId: MEMBER_ACCOUNT_ID,
    region,
    roleArn: MEMBER_ROLE_ARN,
    key: `${MEMBER_ACCOUNT_ID}/${region}`,
  })),
];

/** The agent configuration discovering the four account-regions (one source per account). */
export function agentConfig(tableName: string, names: Secrets): AgentConfigInput {
  return {
    agentId: 'bench-agent',
    sources: [
      { name: 'home', accountId: DEFAULT_ACCOUNT_ID, regions: [...REGIONS] },
      { name: 'member', roleArn: MEMBER_ROLE_ARN, regions: [...REGIONS] },
    ],
    rateLimit: { ...THROTTLE },
    apiKeyRateLimit: { ...KEY_THROTTLE },
    concurrency: 4,
    tableName,
    relayTokenSecretName: names.relayTokenSecretName,
    apiKeySecretName: names.apiKeySecretName,
  };
}

export const SCENARIOS = { S: 50, M: 500, L: 2000 } as const;
export type ScenarioName = keyof typeof SCENARIOS;

/** The seed of each account-region for `apis` APIs in all: split evenly, names unique per account-region. */
export function scenarioSeeds(apis: number): SeedDescription[] {
  return ACCOUNT_REGIONS.map((_ar, i) => {
    const count = Math.floor(apis / ACCOUNT_REGIONS.length) + (i < apis % ACCOUNT_REGIONS.length ? 1 : 0);
    return generateSeed({
      apis: count,
      stages: ['dev', 'prod'],
      plansPerStage: 1,
      withoutPlan: Math.round(count * WITHOUT_PLAN_SHARE),
      prefix: `ar${i}-api`,
    });
  });
}

export interface Secrets {
  readonly relayTokenSecretName: string;
  readonly apiKeySecretName: string;
  /** The relay bearer token (random per run; never printed). */
  readonly relayToken: string;
}

export interface BenchEnv {
  readonly moto: MotoServer;
  readonly proxy: FidelityProxy;
  /** Client config through the proxy (counted, throttled, delayed). */
  readonly viaProxy: { endpoint: string; region: string; credentials: typeof CREDENTIALS };
  /** Raw API Gateway client of an account-region straight to moto (seeding, redeploys). */
  apiGatewayDirect(ar: AccountRegion): Promise<APIGatewayClient>;
  /** Empties moto and the proxy's counters. */
  reset(): Promise<void>;
  /** Turns the scenario's throttle and latency on (fresh buckets). */
  armProxy(): void;
  createTable(name: string): Promise<void>;
  createSecrets(): Promise<Secrets>;
  stop(): Promise<void>;
}

export async function startBenchEnv(): Promise<BenchEnv> {
  const moto = await startMoto();
  const proxy = await startFidelityProxy({ target: moto.endpoint });
  const direct = { endpoint: moto.endpoint, region: REGION, credentials: { ...CREDENTIALS } };
  const memberCredentials = async () => {
    const out = await new STSClient(direct).send(
      new AssumeRoleCommand({ RoleArn: MEMBER_ROLE_ARN, RoleSessionName: 'bench-seeder' }),
    );
    const c = out.Credentials!;
    return {
      accessKeyId: c.AccessKeyId!,
      secretAccessKey: c.SecretAccessKey!,
      sessionToken: c.SessionToken!,
    };
  };
  return {
    moto,
    proxy,
    viaProxy: { endpoint: proxy.endpoint, region: REGION, credentials: { ...CREDENTIALS } },
    async apiGatewayDirect(ar) {
      return new APIGatewayClient({
        endpoint: moto.endpoint,
        region: ar.region,
        credentials: ar.roleArn ? await memberCredentials() : { ...CREDENTIALS },
        maxAttempts: 5,
      });
    },
    async reset() {
      await resetMoto(moto.endpoint);
      proxy.resetAll();
    },
    armProxy() {
      proxy.setThrottle({ ...THROTTLE, operations: API_KEY_OPERATION_QUOTAS });
      proxy.setFaults({ seed: 1, rates: {}, latencyMs: LATENCY_MS });
    },
    async createTable(name) {
      await createLedgerTable(new DynamoDBClient(direct), name);
    },
    async createSecrets() {
      const client = new SecretsManagerClient(direct);
      const relayToken = randomBytes(32).toString('base64url');
      const names = {
        relayTokenSecretName: 'bench/relay-token',
        apiKeySecretName: 'bench/api-key-hmac',
      };
      await client.send(
        new CreateSecretCommand({ Name: names.relayTokenSecretName, SecretString: relayToken }),
      );
      await client.send(
        new CreateSecretCommand({
          Name: names.apiKeySecretName,
          SecretString: randomBytes(48).toString('base64url'),
        }),
      );
      return { ...names, relayToken };
    },
    async stop() {
      await proxy.stop();
      await moto.stop();
    },
  };
}

/** Seeds every account-region of a scenario straight into moto (not through the proxy). */
export async function seedScenario(env: BenchEnv, seeds: readonly SeedDescription[]): Promise<SeedResult[]> {
  return Promise.all(
    ACCOUNT_REGIONS.map(async (ar, i) => seed(await env.apiGatewayDirect(ar), seeds[i]!, { concurrency: 8 })),
  );
}
