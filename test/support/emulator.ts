/**
 * Per-test-file AWS emulator: one moto server and one fidelity proxy, isolated from other test files
 * (vitest runs files in parallel forks).
 *
 * ```ts
 * let emu: Emulator;
 * beforeAll(async () => { emu = await startEmulator(); });
 * afterAll(async () => { await emu?.stop(); });
 * beforeEach(async () => { await emu.reset(); });
 * // code under test: endpoint emu.endpoint (the proxy); assertions: emu.apiGateway() (raw, to moto)
 * ```
 */
import { APIGatewayClient, GetApiKeyCommand } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type MotoServer, resetMoto, startMoto } from '../../emulator/moto.js';
import { DEFAULT_ACCOUNT_ID, type FidelityProxy, startFidelityProxy } from '../../emulator/proxy.js';

export const TEST_REGION = 'us-east-1';
export const TEST_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' } as const;

export interface ClientOptions {
  region?: string;
  /** `'proxy'` (default for code under test) or `'moto'` (unrestricted, unobserved). */
  via?: 'proxy' | 'moto';
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** SDK retry attempts, default 1 (no retries) so tests see what the proxy answers. */
  maxAttempts?: number;
}

export interface Emulator {
  /** The fidelity proxy's endpoint: give this to the code under test. */
  readonly endpoint: string;
  /** moto itself, bypassing the proxy (seeding, assertions). */
  readonly motoEndpoint: string;
  readonly proxy: FidelityProxy;
  readonly moto: MotoServer;
  readonly region: string;
  readonly accountId: string;
  /** Clears moto's state and the proxy's calls, stats, faults, throttle and policies. */
  reset(): Promise<void>;
  stop(): Promise<void>;
  /** Raw API Gateway client; default straight to moto (unrestricted, not counted). */
  apiGateway(options?: ClientOptions): APIGatewayClient;
  /** Raw DynamoDB client; default straight to moto. */
  dynamoDb(options?: ClientOptions): DynamoDBClient;
  /** Client configuration for any SDK v3 client: `new XClient(emu.clientConfig())` (default via proxy). */
  clientConfig(options?: ClientOptions): {
    endpoint: string;
    region: string;
    credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
    maxAttempts: number;
  };
}

/** Starts moto and a fidelity proxy in front of it. Call in `beforeAll`; `stop()` in `afterAll`. */
export async function startEmulator(): Promise<Emulator> {
  const moto = await startMoto();
  let proxy: FidelityProxy;
  try {
    proxy = await startFidelityProxy({ target: moto.endpoint });
  } catch (error) {
    await moto.stop();
    throw error;
  }
  const clientConfig = (options: ClientOptions = {}) => ({
    endpoint: options.via === 'moto' ? moto.endpoint : proxy.endpoint,
    region: options.region ?? TEST_REGION,
    credentials: options.credentials ?? { ...TEST_CREDENTIALS },
    maxAttempts: options.maxAttempts ?? 1,
  });
  return {
    endpoint: proxy.endpoint,
    motoEndpoint: moto.endpoint,
    proxy,
    moto,
    region: TEST_REGION,
    accountId: DEFAULT_ACCOUNT_ID,
    async reset() {
      await resetMoto(moto.endpoint);
      proxy.resetAll();
    },
    async stop() {
      await proxy.stop();
      await moto.stop();
    },
    apiGateway: (options = {}) =>
      new APIGatewayClient(clientConfig({ via: 'moto', maxAttempts: 3, ...options })),
    dynamoDb: (options = {}) => new DynamoDBClient(clientConfig({ via: 'moto', maxAttempts: 3, ...options })),
    clientConfig: (options = {}) => clientConfig({ via: 'proxy', ...options }),
  };
}

/** Whether the API key exists in API Gateway (asked straight to moto: `GetApiKey`, 404 = gone). */
export async function apiKeyExists(emu: Pick<Emulator, 'apiGateway'>, apiKeyId: string): Promise<boolean> {
  try {
    await emu.apiGateway({ via: 'moto' }).send(new GetApiKeyCommand({ apiKey: apiKeyId }));
    return true;
  } catch (error) {
    if ((error as { name?: string }).name === 'NotFoundException') return false;
    throw error;
  }
}
