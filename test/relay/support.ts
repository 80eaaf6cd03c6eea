/**
 * The relay wired end to end for tests: the real relay handlers (authorizer, connection, command)
 * behind the local API Gateway WebSocket emulator, discovery and subscriptions behind the local Lambda
 * Invoke endpoint, the ledger, secrets and API Gateway in moto through the fidelity proxy.
 */
import { randomBytes } from 'node:crypto';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import WebSocket from 'ws';
import { type SeedResult, seed } from '../../emulator/seeder.js';
import { createDiscoveryHandler } from '../../functions/discovery/handler.js';
import { createRelayAuthorizerHandler } from '../../functions/relay-authorizer/handler.js';
import { createRelayCommandHandler } from '../../functions/relay-command/handler.js';
import { createRelayConnectionHandler } from '../../functions/relay-connection/handler.js';
import { createSubscriptionsHandler } from '../../functions/subscriptions/handler.js';
import {
  AwsClientFactory,
  createLedgerTable,
  createRelayWiring,
  createSubscriptionsWiring,
  DefinitionStore,
  DiscoveryEngine,
  LambdaInvoker,
  LeaseRepository,
  type LedgerTable,
  type LoadedConfig,
  parseAgentConfig,
  type RelayDiscoveryRequest,
  type RelayWiring,
  RunRepository,
  SubscriptionRepository,
  secretLoader,
  TokenVerifier,
} from '../../layers/federation-core/src/index.js';
import { type LambdaEndpoint, startLambdaEndpoint } from '../../local/lambda-endpoint.js';
import { startWebSocketApi, type WebSocketApi } from '../../local/websocket-api.js';
import { type Emulator, TEST_CREDENTIALS } from '../support/emulator.js';

export const TABLE = 'relay-ledger';
export const RELAY_SECRET = 'apigw-federation/relay-token';
export const HMAC_SECRET = 'apigw-federation/api-key-hmac';

export interface RelayWorld {
  readonly emu: Emulator;
  readonly ws: WebSocketApi;
  readonly lambda: LambdaEndpoint;
  readonly token: string;
  readonly relay: RelayWiring;
  readonly table: LedgerTable;
  readonly definitions: DefinitionStore;
  readonly seeded: SeedResult;
  readonly factory: AwsClientFactory;
  /** Handler failures the emulators reported. */
  readonly handlerErrors: unknown[];
  /** Discovery invocations received so far. */
  discoveryCalls(): number;
  /** Makes the next discovery runs wait until the returned function is called. */
  holdDiscovery(): () => void;
  /** Waits until no handler or invocation is in flight (including asynchronous ones). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

/** Builds the world on a reset emulator: ledger table, both secrets, two seeded APIs on usage plans. */
export async function startRelayWorld(emu: Emulator): Promise<RelayWorld> {
  await emu.reset();
  await createLedgerTable(emu.dynamoDb(), TABLE);
  const token = randomBytes(24).toString('base64url');
  const secrets = new SecretsManagerClient(emu.clientConfig({ via: 'moto' }));
  await secrets.send(new CreateSecretCommand({ Name: RELAY_SECRET, SecretString: token }));
  await secrets.send(
    new CreateSecretCommand({ Name: HMAC_SECRET, SecretString: randomBytes(48).toString('base64') }),
  );
  const seeded = await seed(emu.apiGateway(), {
    apis: [
      { key: 'pets', name: 'Pets', stages: ['prod'], models: [] },
      { key: 'orders', name: 'Orders', stages: ['prod'], models: [] },
    ],
    usagePlans: [
      { key: 'gold', name: 'Gold', stages: [{ api: 'pets', stage: 'prod' }] },
      { key: 'basic', name: 'Basic', stages: [{ api: 'orders', stage: 'prod' }] },
    ],
  });

  // Code under test talks to the fidelity proxy (counted); the Lambda API goes to the local endpoint.
  const factory = new AwsClientFactory({
    region: emu.region,
    endpoint: emu.endpoint,
    credentials: { ...TEST_CREDENTIALS },
  });
  const table: LedgerTable = { client: factory.dynamoDocument(), tableName: TABLE };
  const handlerErrors: unknown[] = [];
  let gate: Promise<void> | undefined;
  let discoveryCalls = 0;

  // Late-bound: the Lambda endpoint and the WebSocket API need each other's URLs.
  let relay: RelayWiring | undefined;
  let invoker: LambdaInvoker | undefined;
  const functions = {
    'relay-connection': async (event: unknown, context: Context) =>
      connectionHandler()(event as never, context),
    discovery: async (event: RelayDiscoveryRequest) => discovery(event),
    subscriptions: async (event: unknown, context: Context) => subscriptionsHandler()(event, context),
  };
  const lambda = await startLambdaEndpoint({
    port: 0,
    functions,
    region: emu.region,
    accountId: emu.accountId,
    onAsyncError: (name, error) => handlerErrors.push({ name, error }),
  });
  invoker = new LambdaInvoker(
    new LambdaClient({ region: emu.region, endpoint: lambda.url, credentials: { ...TEST_CREDENTIALS } }),
  );

  const verifier = new TokenVerifier({ loadToken: secretLoader(factory.secretsManager(), RELAY_SECRET) });
  const authorizer = createRelayAuthorizerHandler({ verifier });
  const connectionHandler = () =>
    createRelayConnectionHandler({
      connections: (relay as RelayWiring).connections,
      sendHello: (connectionId) => (relay as RelayWiring).service.sendHello(connectionId),
      scheduleHello: (request, context) =>
        (invoker as LambdaInvoker).invokeAsync(context.invokedFunctionArn, request),
    });
  const commandHandler = () => createRelayCommandHandler({ service: (relay as RelayWiring).service });

  const ws = await startWebSocketApi({
    port: 0,
    region: emu.region,
    accountId: emu.accountId,
    authorizer: { functionName: 'relay-authorizer', handler: authorizer },
    identitySource: ['route.request.header.Authorization'],
    routes: {
      $connect: { functionName: 'relay-connection', handler: (e, c) => connectionHandler()(e, c) },
      $disconnect: { functionName: 'relay-connection', handler: (e, c) => connectionHandler()(e, c) },
      ...Object.fromEntries(
        ['discover', 'sync', 'subscribe', 'unsubscribe', 'ping', '$default'].map((route) => [
          route,
          { functionName: 'relay-command', handler: (e: never) => commandHandler()(e) },
        ]),
      ),
    },
    onHandlerError: (routeKey, error) => handlerErrors.push({ routeKey, error }),
  });

  const config: LoadedConfig = {
    agent: parseAgentConfig({
      agentId: 'test-agent',
      tableName: TABLE,
      relayTokenSecretName: RELAY_SECRET,
      apiKeySecretName: HMAC_SECRET,
    }),
    runtime: {
      region: emu.region,
      endpoint: emu.endpoint,
      connectionsUrl: ws.connectionsUrl,
      discoveryFunctionName: 'discovery',
      subscriptionsFunctionName: 'subscriptions',
      version: '9.9.9-test',
    },
  };
  relay = createRelayWiring({ config, clients: factory, invoker });
  const wiredRelay = relay;
  const subscriptionsWiring = createSubscriptionsWiring({ config, clients: factory });
  const subscriptionsHandler = () => createSubscriptionsHandler(subscriptionsWiring);

  const definitions = new DefinitionStore(table);
  const engine = new DiscoveryEngine(
    {
      apiGateway: (target) => factory.apiGateway(target),
      callerAccountId: async () =>
        (await factory.sts().send(new GetCallerIdentityCommand({}))).Account as string,
      catalog: wiredRelay.catalog,
      outbox: wiredRelay.outbox,
      definitions,
      runs: new RunRepository(table),
      leases: new LeaseRepository(table),
      subscriptions: new SubscriptionRepository(table),
    },
    {
      sources: config.agent.sources,
      acceptApiWithoutUsagePlan: false,
      labels: config.agent.labels,
      rateLimit: config.agent.rateLimit,
      concurrency: 2,
      defaultRegion: emu.region,
      retry: { baseDelayMs: 5, maxDelayMs: 20, maxAttempts: 4 },
    },
  );
  // The real discovery handler (run, publish the run's events, reply to `replyTo`), behind a gate.
  const discoveryHandler = createDiscoveryHandler({ engine, publisher: wiredRelay.publisher });
  const discovery = async (event: RelayDiscoveryRequest) => {
    discoveryCalls++;
    if (gate) await gate;
    return discoveryHandler(event);
  };

  return {
    emu,
    ws,
    lambda,
    token,
    relay: wiredRelay,
    table,
    definitions,
    seeded,
    factory,
    handlerErrors,
    discoveryCalls: () => discoveryCalls,
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
    async idle() {
      for (let i = 0; i < 5; i++) {
        await ws.idle();
        await lambda.idle();
      }
    },
    async stop() {
      await ws.close();
      await lambda.close();
    },
  };
}

/** A ledger client straight to moto (not counted by the proxy), for assertions. */
export function rawLedger(emu: Emulator): LedgerTable {
  return {
    client: DynamoDBDocumentClient.from(emu.dynamoDb(), { marshallOptions: { removeUndefinedValues: true } }),
    tableName: TABLE,
  };
}

/** A raw WebSocket to the relay that records every text frame it receives. */
export interface RawConnection {
  readonly socket: WebSocket;
  readonly frames: string[];
  send(text: string): void;
  /** Resolves with the first parsed frame matching `predicate` (already received or future). */
  waitFor(
    predicate: (message: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

/** Connects with `token` (the world's by default; `null` sends no Authorization header). */
export function rawConnect(world: RelayWorld, token: string | null = world.token): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(
      world.ws.url,
      token === null ? {} : { headers: { Authorization: `Bearer ${token}` } },
    );
    const frames: string[] = [];
    const waiters: {
      predicate: (m: Record<string, unknown>) => boolean;
      resolve: (m: Record<string, unknown>) => void;
    }[] = [];
    const check = (frame: string) => {
      const message = JSON.parse(frame) as Record<string, unknown>;
      for (const w of [...waiters]) {
        if (w.predicate(message)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(message);
        }
      }
    };
    socket.on('message', (data) => {
      const frame = data.toString();
      frames.push(frame);
      check(frame);
    });
    socket.on('unexpected-response', (_req, res) =>
      reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })),
    );
    socket.on('error', reject);
    socket.on('open', () =>
      resolve({
        socket,
        frames,
        send: (text) => socket.send(text),
        waitFor: (predicate, timeoutMs = 15_000) =>
          new Promise((res, rej) => {
            for (const f of frames) {
              const m = JSON.parse(f) as Record<string, unknown>;
              if (predicate(m)) return res(m);
            }
            const timer = setTimeout(() => rej(new Error('timed out waiting for a frame')), timeoutMs);
            waiters.push({
              predicate,
              resolve: (m) => {
                clearTimeout(timer);
                res(m);
              },
            });
          }),
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
