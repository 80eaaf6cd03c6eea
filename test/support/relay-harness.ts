/**
 * The agent wired end to end for tests, with the real function handlers: the relay authorizer,
 * connection and command handlers behind the local API Gateway WebSocket emulator; the discovery and
 * subscriptions handlers (over the core's wirings, as their modules build them) behind the local
 * Lambda Invoke endpoint; the ledger, secrets and API Gateway in moto through the fidelity proxy.
 *
 * One harness for the relay, client and reliability tests; options cover what they vary (seed, engine
 * settings, token cache clock, agent identity, holding discovery mid-run through {@link RelayHarness.holdDiscovery}).
 * The route table and the function names are the local runtime's (`local/runtime.ts`), so both wire alike.
 *
 * ```ts
 * const emu = await startEmulator();
 * const agent = await startRelayHarness(emu, { seed: mySeed });
 * const client = await agent.connect();
 * client.send(JSON.stringify({ action: 'discover', id: '1' }));
 * await client.waitFor((m) => m.type === 'reply' && m.commandId === '1');
 * await agent.stop();
 * ```
 */
import { randomBytes } from 'node:crypto';
import { LambdaClient } from '@aws-sdk/client-lambda';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import WebSocket from 'ws';
import { type SeedDescription, type SeedResult, seed } from '../../emulator/seeder.js';
import { createDiscoveryHandler } from '../../functions/discovery/handler.js';
import { createRelayAuthorizerHandler } from '../../functions/relay-authorizer/handler.js';
import { createRelayCommandHandler } from '../../functions/relay-command/handler.js';
import { createRelayConnectionHandler } from '../../functions/relay-connection/handler.js';
import { createSubscriptionsHandler } from '../../functions/subscriptions/handler.js';
import {
  AwsClientFactory,
  createDiscoveryWiring,
  createLedgerTable,
  createLogger,
  createRelayWiring,
  createSubscriptionsWiring,
  type DiscoverySettings,
  type DiscoveryWiring,
  decodeFrame,
  LambdaInvoker,
  type LedgerTable,
  type LoadedConfig,
  parseAgentConfig,
  Reassembler,
  type RelayWiring,
  type SubscriptionHooks,
  type SubscriptionsWiring,
  secretLoader,
  TokenVerifier,
} from '../../layers/federation-core/src/index.js';
import { type LambdaEndpoint, startLambdaEndpoint } from '../../local/lambda-endpoint.js';
import { FUNCTION_NAMES, generateToken, relayRoutes } from '../../local/runtime.js';
import { startWebSocketApi, type WebSocketApi } from '../../local/websocket-api.js';
import { type Emulator, TEST_CREDENTIALS } from './emulator.js';

export const HARNESS_TABLE = 'agent-ledger';

/** API Gateway's WebSocket frame limit for clients. */
const CLIENT_FRAME_BYTES = 32 * 1024;

/** Sends one message in continuation frames of at most 32 KB (text stays text, binary stays binary). */
export function sendInFrames(socket: WebSocket, data: string | Buffer): void {
  const binary = typeof data !== 'string';
  const bytes = binary ? data : Buffer.from(data, 'utf8');
  if (bytes.length <= CLIENT_FRAME_BYTES) {
    socket.send(data);
    return;
  }
  for (let offset = 0; offset < bytes.length; offset += CLIENT_FRAME_BYTES) {
    const fin = offset + CLIENT_FRAME_BYTES >= bytes.length;
    socket.send(bytes.subarray(offset, offset + CLIENT_FRAME_BYTES), { binary, fin });
  }
}
export const HARNESS_RELAY_SECRET = 'apigw-federation/relay-token';
export const HARNESS_HMAC_SECRET = 'apigw-federation/api-key-hmac';

/** Two APIs on two usage plans: the smallest world where every relay feature has something to do. */
export const SMALL_SEED: SeedDescription = {
  apis: [
    { key: 'pets', name: 'Pets', stages: ['prod'], models: [] },
    { key: 'orders', name: 'Orders', stages: ['prod'], models: [] },
  ],
  usagePlans: [
    { key: 'gold', name: 'Gold', stages: [{ api: 'pets', stage: 'prod' }] },
    { key: 'basic', name: 'Basic', stages: [{ api: 'orders', stage: 'prod' }] },
  ],
};

export interface RelayHarnessOptions {
  /** API Gateway state to seed (default {@link SMALL_SEED}). */
  readonly seed?: SeedDescription;
  /** Engine setting overrides (retry, concurrency, rate limit). Default: fast test retries. */
  readonly discovery?: Partial<DiscoverySettings>;
  /** Relay token cache TTL and clock (rotation tests). */
  readonly tokenTtlMs?: number;
  readonly now?: () => number;
  /** Largest client message the WebSocket emulator accepts (default API Gateway's 128 KB). */
  readonly maxMessageBytes?: number;
  /** Idle timeout of the WebSocket emulator (default API Gateway's 10 minutes). */
  readonly idleTimeoutMs?: number;
  /** Messages one relay-command invocation of a `sync` sends before handing on (resumption tests). */
  readonly syncChunkSize?: number;
  /** Subscriptions chaos hooks. */
  readonly subscriptionHooks?: SubscriptionHooks;
  /** The subscriptions saga's clock (a `finish-revocations` an hour later). */
  readonly subscriptionsNow?: () => number;
  /** Give the handlers real Powertools loggers (default true: their output is what hygiene scans). */
  readonly loggers?: boolean;
  /** The agent identity the relay announces in `hello` and `ping` (default `reliability-agent`, `0.0.0-reliability`). */
  readonly agentId?: string;
  readonly version?: string;
  /** Default timeout of {@link RawConnection.waitFor} on connections from `connect()` (default 20 s). */
  readonly waitForTimeoutMs?: number;
}

/** The agent the relay and client tests talk to: the identity they assert on, no loggers, quick retries. */
export const TEST_AGENT = {
  agentId: 'test-agent',
  version: '9.9.9-test',
  loggers: false,
  discovery: { concurrency: 2, retry: { baseDelayMs: 5, maxDelayMs: 20, maxAttempts: 4 } },
  waitForTimeoutMs: 15_000,
} as const satisfies RelayHarnessOptions;

export interface RelayHarness {
  readonly emu: Emulator;
  readonly ws: WebSocketApi;
  readonly lambda: LambdaEndpoint;
  /** The current relay token. */
  readonly token: string;
  /** Through the proxy (what the code under test uses). */
  readonly factory: AwsClientFactory;
  /** The ledger straight to moto (uncounted), for assertions. */
  readonly ledger: LedgerTable;
  /** The ledger through the proxy, as the handlers see it. */
  readonly table: LedgerTable;
  readonly relay: RelayWiring;
  readonly discovery: DiscoveryWiring;
  readonly subscriptions: SubscriptionsWiring;
  readonly seeded: SeedResult;
  /** The handlers as API Gateway / Lambda call them. */
  readonly handlers: {
    readonly authorizer: ReturnType<typeof createRelayAuthorizerHandler>;
    readonly connection: ReturnType<typeof createRelayConnectionHandler>;
    readonly command: ReturnType<typeof createRelayCommandHandler>;
    readonly discovery: ReturnType<typeof createDiscoveryHandler>;
    readonly subscriptions: ReturnType<typeof createSubscriptionsHandler>;
  };
  /** Failures the emulators reported (handler throws, failed asynchronous invocations). */
  readonly handlerErrors: { where: string; error: unknown }[];
  /** Discovery invocations received by the Lambda endpoint so far (direct `handlers.discovery` calls excluded). */
  discoveryCalls(): number;
  /** Asynchronous invocations of relay-command by itself (`sync` continuations). */
  syncInvocations(): number;
  /** Makes the discovery invocations through the Lambda endpoint wait until the returned function is called. */
  holdDiscovery(): () => void;
  /** Writes a new relay token to Secrets Manager (the verifier sees it once its cache expires). */
  rotateToken(): Promise<string>;
  connect(token?: string | null, headers?: Record<string, string>): Promise<RawConnection>;
  /** Waits until no handler or invocation is in flight (asynchronous ones included). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the agent on a reset emulator: ledger table, both secrets, seeded API Gateway. */
export async function startRelayHarness(
  emu: Emulator,
  options: RelayHarnessOptions = {},
): Promise<RelayHarness> {
  await emu.reset();
  await createLedgerTable(emu.dynamoDb(), HARNESS_TABLE);
  let token = generateToken();
  const secrets = new SecretsManagerClient(emu.clientConfig({ via: 'moto' }));
  await secrets.send(new CreateSecretCommand({ Name: HARNESS_RELAY_SECRET, SecretString: token }));
  await secrets.send(
    new CreateSecretCommand({ Name: HARNESS_HMAC_SECRET, SecretString: randomBytes(48).toString('base64') }),
  );
  const seeded = await seed(emu.apiGateway(), options.seed ?? SMALL_SEED);

  const factory = new AwsClientFactory({
    region: emu.region,
    endpoint: emu.endpoint,
    credentials: { ...TEST_CREDENTIALS },
  });
  const ledger: LedgerTable = {
    client: DynamoDBDocumentClient.from(emu.dynamoDb(), { marshallOptions: { removeUndefinedValues: true } }),
    tableName: HARNESS_TABLE,
  };
  const logger = (name: string) => (options.loggers === false ? undefined : createLogger(name));
  const handlerErrors: { where: string; error: unknown }[] = [];
  let gate: Promise<void> | undefined;
  let discoveryCalls = 0;
  let syncInvocations = 0;

  // Late-bound: the Lambda endpoint and the WebSocket API need each other's URLs.
  let handlers!: RelayHarness['handlers'];
  const lambda = await startLambdaEndpoint({
    port: 0,
    region: emu.region,
    accountId: emu.accountId,
    functions: {
      [FUNCTION_NAMES.relayConnection]: (event: unknown, context: Context) =>
        handlers.connection(event as never, context),
      [FUNCTION_NAMES.discovery]: async (event: unknown, context: Context) => {
        discoveryCalls++;
        if (gate) await gate;
        return handlers.discovery(event, context);
      },
      // Asynchronous invocations (discovery's `revoke-keys`) retried twice, as deployed, without Lambda's minutes.
      [FUNCTION_NAMES.subscriptions]: {
        handler: (event: unknown, context: Context) => handlers.subscriptions(event, context),
        asyncRetries: 2,
        asyncRetryDelaysMs: [50, 100],
      },
      // relay-command invokes itself to continue a `sync` (5 minutes, as deployed).
      [FUNCTION_NAMES.relayCommand]: {
        timeoutMs: 300_000,
        handler: (event: unknown, context: Context) => {
          syncInvocations++;
          return handlers.command(event as never, context);
        },
      },
    },
    onAsyncError: (name, error) => handlerErrors.push({ where: `async ${name}`, error }),
  });
  const invoker = new LambdaInvoker(
    new LambdaClient({ region: emu.region, endpoint: lambda.url, credentials: { ...TEST_CREDENTIALS } }),
  );
  const verifier = new TokenVerifier({
    loadToken: secretLoader(factory.secretsManager(), HARNESS_RELAY_SECRET),
    ttlMs: options.tokenTtlMs,
    now: options.now,
  });

  const ws = await startWebSocketApi({
    port: 0,
    region: emu.region,
    accountId: emu.accountId,
    maxMessageBytes: options.maxMessageBytes,
    idleTimeoutMs: options.idleTimeoutMs,
    authorizer: { functionName: FUNCTION_NAMES.relayAuthorizer, handler: (e) => handlers.authorizer(e) },
    identitySource: ['route.request.header.Authorization'],
    routes: relayRoutes(
      { functionName: FUNCTION_NAMES.relayConnection, handler: (e, c) => handlers.connection(e as never, c) },
      { functionName: FUNCTION_NAMES.relayCommand, handler: (e, c) => handlers.command(e as never, c) },
    ),
    onHandlerError: (routeKey, error) => handlerErrors.push({ where: routeKey, error }),
  });

  const config: LoadedConfig = {
    agent: parseAgentConfig({
      agentId: options.agentId ?? 'reliability-agent',
      tableName: HARNESS_TABLE,
      relayTokenSecretName: HARNESS_RELAY_SECRET,
      apiKeySecretName: HARNESS_HMAC_SECRET,
    }),
    runtime: {
      region: emu.region,
      endpoint: emu.endpoint,
      connectionsUrl: ws.connectionsUrl,
      discoveryFunctionName: FUNCTION_NAMES.discovery,
      subscriptionsFunctionName: FUNCTION_NAMES.subscriptions,
      version: options.version ?? '0.0.0-reliability',
    },
  };
  const relay = createRelayWiring({
    config,
    clients: factory,
    invoker,
    logger: logger('relay'),
    syncChunkSize: options.syncChunkSize,
  });
  const discovery = createDiscoveryWiring({
    config,
    clients: factory,
    invoker, // its plan removals hand the keys to the subscriptions function through the Lambda endpoint
    logger: logger('discovery'),
    settings: {
      retry: { baseDelayMs: 5, maxDelayMs: 50, maxAttempts: 6, maxRetryAfterMs: 50 },
      ...options.discovery,
    },
  });
  const subscriptions = createSubscriptionsWiring({
    config,
    clients: factory,
    logger: logger('subscriptions'),
    hooks: options.subscriptionHooks,
    ...(options.subscriptionsNow ? { now: options.subscriptionsNow } : {}),
  });
  handlers = {
    authorizer: createRelayAuthorizerHandler({ verifier, logger: logger('relay-authorizer') }),
    connection: createRelayConnectionHandler({
      connections: relay.connections,
      sendHello: (connectionId) => relay.service.sendHello(connectionId),
      scheduleHello: (request, context) => invoker.invokeAsync(context.invokedFunctionArn, request),
      logger: logger('relay-connection'),
    }),
    command: createRelayCommandHandler({ service: relay.service, logger: logger('relay-command') }),
    discovery: createDiscoveryHandler({
      engine: discovery.engine,
      publisher: discovery.publisher,
      logger: logger('discovery'),
    }),
    subscriptions: createSubscriptionsHandler({ ...subscriptions, logger: logger('subscriptions') }),
  };

  const harness: RelayHarness = {
    emu,
    ws,
    lambda,
    get token() {
      return token;
    },
    factory,
    ledger,
    table: discovery.table,
    relay,
    discovery,
    subscriptions,
    seeded,
    handlers,
    handlerErrors,
    discoveryCalls: () => discoveryCalls,
    syncInvocations: () => syncInvocations,
    holdDiscovery() {
      let release!: () => void;
      gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      return () => {
        gate = undefined;
        release();
      };
    },
    async rotateToken() {
      token = generateToken();
      await secrets.send(new PutSecretValueCommand({ SecretId: HARNESS_RELAY_SECRET, SecretString: token }));
      return token;
    },
    connect: (presented = token, headers = {}) =>
      rawConnect(ws.url, presented, headers, options.waitForTimeoutMs),
    async idle() {
      for (let i = 0; i < 5; i++) {
        await ws.idle();
        await lambda.idle();
      }
    },
    async stop() {
      await ws.close();
      await lambda.idle();
      await lambda.close();
      secrets.destroy();
    },
  };
  return harness;
}

/** A raw WebSocket client that records every frame and decodes them (reassembling parts) into messages. */
export interface RawConnection {
  readonly socket: WebSocket;
  /** Every text frame received, as sent (parts not reassembled), in arrival order. */
  readonly frames: string[];
  /** Every whole message received, in arrival order. */
  readonly messages: Record<string, unknown>[];
  /** Close code and reason once closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /**
   * Sends one message as a conforming client does: in frames of at most 32 KB (API Gateway's frame
   * limit), so a larger message (up to 128 KB) still arrives whole.
   */
  send(text: string | Buffer): void;
  /** Sends one message as a single frame, whatever its size (a frame over 32 KB closes the connection). */
  sendFrame(text: string | Buffer): void;
  /** The first message matching `predicate`, already received or future. */
  waitFor(
    predicate: (m: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Sends a command (an `id` is added when missing) and resolves with its reply. */
  command(command: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

let commandCounter = 0;

/** Opens a WebSocket with `Authorization: Bearer <token>` (no header when `token` is null). */
export function rawConnect(
  url: string,
  token: string | null,
  headers: Record<string, string> = {},
  waitForTimeoutMs = 20_000,
): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, {
      headers: { ...(token === null ? {} : { Authorization: `Bearer ${token}` }), ...headers },
    });
    const frames: string[] = [];
    const messages: Record<string, unknown>[] = [];
    const reassembler = new Reassembler();
    const waiters = new Set<{
      predicate: (m: Record<string, unknown>) => boolean;
      resolve: (m: Record<string, unknown>) => void;
    }>();
    let closedResolve!: (v: { code: number; reason: string }) => void;
    const closed = new Promise<{ code: number; reason: string }>((r) => {
      closedResolve = r;
    });
    socket.on('close', (code, reason) => closedResolve({ code, reason: reason.toString() }));
    socket.on('message', (data) => {
      const frame = data.toString();
      frames.push(frame);
      const message = decodeFrame(frame, reassembler) as Record<string, unknown> | undefined;
      if (!message) return;
      messages.push(message);
      for (const w of [...waiters]) {
        if (w.predicate(message)) {
          waiters.delete(w);
          w.resolve(message);
        }
      }
    });
    socket.on('unexpected-response', (_req, res) =>
      reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })),
    );
    socket.on('error', reject);
    const waitFor: RawConnection['waitFor'] = (predicate, timeoutMs = waitForTimeoutMs) =>
      new Promise((res, rej) => {
        const found = messages.find(predicate);
        if (found) return res(found);
        const waiter = {
          predicate,
          resolve: (m: Record<string, unknown>) => {
            clearTimeout(timer);
            res(m);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          rej(new Error(`timed out after ${timeoutMs} ms waiting for a message`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    socket.on('open', () =>
      resolve({
        socket,
        frames,
        messages,
        closed,
        send: (text) => sendInFrames(socket, text),
        sendFrame: (text) => socket.send(text),
        waitFor,
        command: (command, timeoutMs) => {
          const id = typeof command.id === 'string' ? command.id : `c${++commandCounter}`;
          socket.send(JSON.stringify({ ...command, id }));
          return waitFor((m) => m.type === 'reply' && m.commandId === id, timeoutMs);
        },
        close: () =>
          new Promise<void>((res) => {
            if (socket.readyState === WebSocket.CLOSED) return res();
            socket.once('close', () => res());
            socket.close();
          }),
      }),
    );
  });
}
