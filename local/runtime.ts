/**
 * The whole agent in one process, against an emulated AWS: what `npm start` runs.
 *
 * - AWS: a moto server on a free loopback port, stopped with the runtime, with the fidelity proxy in front
 *   of it so paging and the OpenAPI 3 export behave like API Gateway. Or, with `AWS_ENDPOINT_URL`, the
 *   user's own endpoint, reached by the agent's calls as they are made: nothing in between but the router
 *   (below), unless `motoFixes` puts the fidelity proxy in front of it too (for a bare moto).
 * - The ledger table and the two secrets (relay token, API-key HMAC secret) are created there; the demo
 *   APIs are seeded unless `seed: false`.
 * - The handlers are the real handler modules (`functions/<name>/handler.ts`), imported after the
 *   environment Lambda would give them is set (`FED_*`, `AWS_ENDPOINT_URL`, `AWS_REGION`), behind the
 *   WebSocket API emulator (authorizer, routes, `@connections`) and the Lambda Invoke endpoint.
 * - Their single `AWS_ENDPOINT_URL` is a small router (`aws-router.ts`): Lambda calls reach the local
 *   Lambda endpoint (so relay-command's `InvocationType: Event` for `discover` works as on AWS), the
 *   rest reaches the AWS endpoint (the proxy, or the user's endpoint). `@connections` needs no routing: the
 *   functions' `FED_CONNECTIONS_URL` is the WebSocket API emulator itself.
 * - A scheduler runs discovery at start and every `scheduleSeconds`, like the EventBridge rule, and the
 *   subscriptions function's `finish-revocations` every hour, like its rule.
 *
 * The handler modules read the environment once, at import (cold start): one runtime per process.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  CatalogRepository,
  createLedgerTable,
  FanOutRunLedger,
  type FederatedApi,
  fanOutEnabled,
  type LoadedConfig,
  loadConfig,
  RELAY_ROUTE_KEYS,
  RunStatus,
  runSummary,
} from '@apigw-federation/core';
import { APIGatewayClient, GetRestApisCommand } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { type MotoServer, startMoto } from '../emulator/moto.js';
import { DEFAULT_ACCOUNT_ID, type FidelityProxy, startFidelityProxy } from '../emulator/proxy.js';
import { demoSeed, type SeedResult, seed } from '../emulator/seeder.js';
import { type AwsRouter, startAwsRouter } from './aws-router.js';
import { cloudTrailEventOf, LocalChangeQueue } from './change-tap.js';
import { createFanOutQueues, FanOutPoller } from './fan-out-poller.js';
import {
  createLambdaContext,
  type LambdaEndpoint,
  type LocalLambdaHandler,
  startLambdaEndpoint,
} from './lambda-endpoint.js';
import { type RouteTarget, startWebSocketApi, type WebSocketApi } from './websocket-api.js';

export const DEFAULT_RELAY_PORT = 8787;
export const DEFAULT_LAMBDA_PORT = 8788;
/** Port of the printed AWS endpoint (the router, with the change-event tap). */
export const DEFAULT_AWS_PORT = 8789;
/** Batching window of the local change-event queue: short, so a write shows in about a second. */
export const LOCAL_CHANGE_BATCH_WINDOW_MS = 250;
export const DEFAULT_SCHEDULE_SECONDS = 60;
const DEFAULT_REGION = 'us-east-1';
/** The function names, as the CDK app's functions are known to each other through FED_*_FUNCTION. */
export const FUNCTION_NAMES = {
  discovery: 'discovery',
  subscriptions: 'subscriptions',
  relayAuthorizer: 'relay-authorizer',
  relayConnection: 'relay-connection',
  relayCommand: 'relay-command',
} as const;
/** Lambda settings of the CDK app (timeouts), so the local functions time out like the deployed ones. */
const TIMEOUTS_MS: Record<string, number> = {
  discovery: 300_000,
  subscriptions: 30_000,
  'relay-authorizer': 10_000,
  'relay-connection': 10_000,
  'relay-command': 300_000,
};

/** The subscriptions function's `finish-revocations` schedule, as the CDK app's rule (hourly). */
const FINISH_REVOCATIONS_INTERVAL_MS = 3_600_000;

/** Retries of failed asynchronous invocations, as the CDK app configures them (default 0). */
const ASYNC_RETRIES: Record<string, number> = { subscriptions: 2 };

export interface LocalRuntimeOptions {
  /** WebSocket API emulator port (default 8787; 0 = any free port). */
  readonly relayPort?: number;
  /** Lambda Invoke endpoint port (default 8788; 0 = any free port). */
  readonly lambdaPort?: number;
  /** The AWS endpoint's port (default 8789; 0 = any free port); `FED_AWS_PORT`. */
  readonly awsPort?: number;
  /** Seconds between scheduled discovery runs (default 60; 0 = only the run at start). */
  readonly scheduleSeconds?: number;
  /** Seed the demo APIs (default true). */
  readonly seed?: boolean;
  /**
   * With `AWS_ENDPOINT_URL`: put the fidelity proxy (moto's fixes: paging, OpenAPI 3 exports, usage plan keys
   * of deleted keys) in front of it, for a bare moto. Default false (`FED_MOTO_FIXES=1` turns it on): the
   * agent's calls reach the endpoint unchanged. The runtime's own moto always has the proxy in front.
   */
  readonly motoFixes?: boolean;
  /** The environment: `AWS_ENDPOINT_URL`, `FED_RELAY_TOKEN`, `AWS_REGION`, `FED_*`. Default `process.env`, which is
   * also where the handler modules read theirs: the runtime writes the Lambda environment into it. */
  readonly env?: NodeJS.ProcessEnv;
  /** Progress lines while starting ("starting moto", "seeding", ...). */
  readonly onProgress?: (message: string) => void;
  /** Aborts a start in progress (Ctrl-C while moto starts): what started is stopped and the start rejects. */
  readonly signal?: AbortSignal;
  /** The result of every scheduled discovery run (the discovery function's answer, its run summary). */
  readonly onDiscovery?: (result: unknown) => void;
  /** Failures that no caller sees (scheduled discovery, `Event` invocations, handler errors). */
  readonly onError?: (what: string, error: unknown) => void;
}

export interface LocalRuntime {
  /** `ws://127.0.0.1:<relayPort>/local` — where a control plane connects. */
  readonly relayUrl: string;
  /** `http://127.0.0.1:<relayPort>/local` — the `@connections` endpoint. */
  readonly connectionsUrl: string;
  /** `http://127.0.0.1:<lambdaPort>` — `--endpoint-url` for `aws lambda invoke`. */
  readonly lambdaUrl: string;
  /** The AWS endpoint for any other AWS client (`--endpoint-url`): the router in front of the fidelity proxy; its
   * API Gateway write calls become change events. */
  readonly awsEndpoint: string;
  /** The emulator: the moto the runtime started, or `AWS_ENDPOINT_URL`. */
  readonly emulatorEndpoint: string;
  /** True when the fidelity proxy is in front of the emulator (own moto, or `motoFixes`). */
  readonly fidelityProxy: boolean;
  /** True when the runtime started (and will stop) its own moto server. */
  readonly ownsEmulator: boolean;
  readonly region: string;
  readonly accountId: string;
  /** The relay bearer token (also in the emulated Secrets Manager). */
  readonly token: string;
  readonly tableName: string;
  /** What was seeded (undefined with `seed: false` or when the demo APIs were already there). */
  readonly seeded?: SeedResult;
  /** The discovery function's answer for the run at start (its run summary). */
  readonly firstDiscovery: unknown;
  /** The federated APIs in the ledger. */
  catalog(): Promise<FederatedApi[]>;
  /** Runs discovery now (as the scheduler does) and resolves with the handler's result. */
  runDiscovery(): Promise<unknown>;
  /** Stops the scheduler, the WebSocket API (its close runs `$disconnect`), the Lambda endpoint, the proxy
   * and the emulator it started. Idempotent. */
  stop(): Promise<void>;
}

interface HandlerModule {
  handler: LocalLambdaHandler;
}

/** Parses a port setting; `undefined` for unset. Throws a message naming `flag` for a bad value. */
export function parsePort(value: string | number | undefined, flag: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const port = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new RangeError(
      `${flag}: expected a port number between 0 and 65535, received ${JSON.stringify(value)}`,
    );
  }
  return port;
}

/**
 * The relay WebSocket API's route table, from the protocol's route keys (as the CDK app routes them):
 * `$connect`/`$disconnect` to `connection`, every command route and `$default` to `command`.
 */
export function relayRoutes(connection: RouteTarget, command: RouteTarget): Record<string, RouteTarget> {
  return {
    ...Object.fromEntries(RELAY_ROUTE_KEYS.connection.map((route) => [route, connection])),
    ...Object.fromEntries(RELAY_ROUTE_KEYS.command.map((route) => [route, command])),
  };
}

/** A boolean setting from the environment (`1`, `true`, `yes`, `on`; `0`, `false`, `no`, `off`, empty). */
export function parseSwitch(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new RangeError(`${name}: expected 1/true or 0/false, received ${JSON.stringify(value)}`);
}

/** Every REST API name in the emulator (`GetRestApis`, following `position`). */
async function restApiNames(client: APIGatewayClient): Promise<Set<string>> {
  const names = new Set<string>();
  let position: string | undefined;
  do {
    const page = await client.send(new GetRestApisCommand({ limit: 500, position }));
    for (const api of page.items ?? []) if (api.name) names.add(api.name);
    position = page.position;
  } while (position);
  return names;
}

/** A strong random token for the relay (256 bits, base64url). */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

async function putSecret(
  client: SecretsManagerClient,
  name: string,
  value: string,
  mode: 'replace' | 'keep',
): Promise<void> {
  try {
    await client.send(new CreateSecretCommand({ Name: name, SecretString: value }));
  } catch (error) {
    if (!(error instanceof ResourceExistsException)) throw error;
    if (mode === 'replace')
      await client.send(new PutSecretValueCommand({ SecretId: name, SecretString: value }));
  }
}

/** The EventBridge "Scheduled Event" the discovery function gets from its rule. */
export function scheduledEvent(region: string, accountId: string): Record<string, unknown> {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: accountId,
    time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region,
    resources: [`arn:aws:events:${region}:${accountId}:rule/local-discovery-schedule`],
    detail: {},
  };
}

/**
 * Starts the local runtime. Ports are bound first, so a port in use fails fast (a `PortInUseError` naming
 * `--relay-port` / `--lambda-port`), before any emulator starts. On failure everything started is stopped.
 */
export async function startLocalRuntime(options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
  const env = options.env ?? process.env;
  const progress = options.onProgress ?? (() => undefined);
  const onError =
    options.onError ?? ((what: string, error: unknown) => console.error(`[local] ${what} failed:`, error));
  const relayPort = parsePort(options.relayPort ?? env.FED_RELAY_PORT, '--relay-port') ?? DEFAULT_RELAY_PORT;
  const lambdaPort =
    parsePort(options.lambdaPort ?? env.FED_LAMBDA_PORT, '--lambda-port') ?? DEFAULT_LAMBDA_PORT;
  const awsPort = parsePort(options.awsPort ?? env.FED_AWS_PORT, '--aws-port') ?? DEFAULT_AWS_PORT;
  const scheduleSeconds = options.scheduleSeconds ?? DEFAULT_SCHEDULE_SECONDS;
  if (!Number.isFinite(scheduleSeconds) || scheduleSeconds < 0) {
    throw new RangeError(
      `--schedule-seconds: expected a number of seconds >= 0, received ${scheduleSeconds}`,
    );
  }
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || DEFAULT_REGION;
  const accountId = DEFAULT_ACCOUNT_ID;
  const motoFixes = options.motoFixes ?? parseSwitch(env.FED_MOTO_FIXES, 'FED_MOTO_FIXES') ?? false;

  // Handlers are looked up when called: the servers listen before the modules are loaded.
  const handlers = new Map<string, LocalLambdaHandler>();
  let ready!: () => void;
  let failed!: (error: unknown) => void;
  const loaded = new Promise<void>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  loaded.catch(() => undefined);
  const fn =
    (name: string): LocalLambdaHandler =>
    async (event, context) => {
      await loaded;
      const handler = handlers.get(name);
      if (!handler) throw new Error(`function ${name} is not loaded`);
      return handler(event, context);
    };
  const target = (name: string) => ({ functionName: name, handler: fn(name) });

  // Filled as things start; stopped in this order (the WebSocket API first: its close runs $disconnect).
  const parts: {
    relay?: WebSocketApi;
    lambda?: LambdaEndpoint;
    router?: AwsRouter;
    changes?: LocalChangeQueue;
    fanOut?: FanOutPoller;
    proxy?: FidelityProxy;
    moto?: MotoServer;
  } = {};
  let stopped: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let revocationTimer: NodeJS.Timeout | undefined;
  let discoveryRun: Promise<unknown> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      clearInterval(timer);
      clearInterval(revocationTimer);
      failed(new Error('the local runtime is stopping'));
      await discoveryRun?.catch(() => undefined);
      const steps: Array<[string, (() => Promise<void>) | undefined]> = [
        ['the WebSocket API', parts.relay && (() => parts.relay!.close())],
        [
          'the Lambda endpoint',
          parts.lambda &&
            (async () => {
              await parts.lambda!.idle();
              await parts.lambda!.close();
            }),
        ],
        ['the AWS router', parts.router && (() => parts.router!.close())],
        ['the change-event queue', parts.changes && (() => parts.changes!.close())],
        ['the fan-out poller', parts.fanOut && (() => parts.fanOut!.stop())],
        ['the fidelity proxy', parts.proxy && (() => parts.proxy!.stop())],
        ['moto', parts.moto && (() => parts.moto!.stop())],
      ];
      for (const [what, stopOne] of steps) {
        try {
          await stopOne?.();
        } catch (error) {
          onError(`stopping ${what}`, error);
        }
      }
    })();
    return stopped;
  };

  const checkpoint = (): void => {
    if (options.signal?.aborted) throw new Error('the local runtime start was aborted');
  };

  try {
    // 1. Ports first: a port in use is reported before anything slow starts.
    const lambda: LambdaEndpoint = await startLambdaEndpoint({
      port: lambdaPort,
      region,
      accountId,
      portHint: '--lambda-port (or FED_LAMBDA_PORT)',
      functions: Object.fromEntries(
        Object.values(FUNCTION_NAMES).map((name) => [
          name,
          {
            handler: fn(name),
            timeoutMs: TIMEOUTS_MS[name],
            // As deployed (infra/constructs): subscriptions' asynchronous `revoke-keys` is retried twice.
            asyncRetries: ASYNC_RETRIES[name] ?? 0,
          },
        ]),
      ),
      onAsyncError: (name, error) => onError(`asynchronous invocation of ${name}`, error),
    });
    parts.lambda = lambda;
    const relay: WebSocketApi = await startWebSocketApi({
      port: relayPort,
      region,
      accountId,
      stage: 'local',
      portHint: '--relay-port (or FED_RELAY_PORT)',
      authorizer: target(FUNCTION_NAMES.relayAuthorizer),
      identitySource: ['route.request.header.Authorization'],
      routes: relayRoutes(target(FUNCTION_NAMES.relayConnection), target(FUNCTION_NAMES.relayCommand)),
      onHandlerError: (routeKey, error, connectionId) =>
        onError(`route ${routeKey} (connection ${connectionId})`, error),
    });
    parts.relay = relay;

    checkpoint();
    // 2. AWS: the user's endpoint as it is (or with moto's fixes in front when asked), or our own moto with the
    // fidelity proxy in front.
    const givenEndpoint = env.AWS_ENDPOINT_URL?.trim() || undefined;
    let emulatorEndpoint: string;
    if (givenEndpoint) {
      emulatorEndpoint = givenEndpoint.replace(/\/$/, '');
      progress(
        motoFixes
          ? `using the AWS endpoint at ${emulatorEndpoint} (AWS_ENDPOINT_URL) with moto's fixes in front (--moto-fixes)`
          : `using the AWS endpoint at ${emulatorEndpoint} (AWS_ENDPOINT_URL): the agent's calls reach it unchanged`,
      );
    } else {
      progress(
        'starting moto (AWS emulator; a first run may install it into .venv, which takes a minute)...',
      );
      // The runtime stops moto itself, after the WebSocket API's $disconnect handlers have written to it.
      const moto = await startMoto({ killOnSignal: false });
      parts.moto = moto;
      emulatorEndpoint = moto.endpoint;
      progress(`moto listening on ${moto.endpoint}`);
    }
    // Dummy credentials for the emulator, unless the caller has some (requests must be signed).
    env.AWS_ACCESS_KEY_ID ||= 'testing';
    env.AWS_SECRET_ACCESS_KEY ||= 'testing';
    if (!givenEndpoint || motoFixes) {
      parts.proxy = await startFidelityProxy({ target: emulatorEndpoint });
    }
    const awsEndpoint = parts.proxy?.endpoint ?? emulatorEndpoint;
    /** The discovery function invoked as an event source mapping invokes it (its own context and timeout). */
    const invokeDiscovery = (event: unknown) =>
      fn(FUNCTION_NAMES.discovery)(
        event,
        createLambdaContext({
          functionName: FUNCTION_NAMES.discovery,
          region,
          accountId,
          timeoutMs: TIMEOUTS_MS.discovery,
        }),
      );
    // The change-event tap: API Gateway writes through the AWS endpoint become CloudTrail events, queued
    // and delivered in batches to the discovery function, as EventBridge → SQS → Lambda on AWS.
    const changes = new LocalChangeQueue({
      batchWindowMs: LOCAL_CHANGE_BATCH_WINDOW_MS,
      deliver: invokeDiscovery,
      onDeadLetter: (body) => onError('change event (dead-lettered)', new Error(body)),
      onError: (error) => onError('change-event batch', error),
    });
    parts.changes = changes;
    const router: AwsRouter = await startAwsRouter({
      aws: awsEndpoint,
      lambda: lambda.url,
      port: awsPort,
      portHint: '--aws-port (or FED_AWS_PORT)',
      accountId,
      onApiGatewayWrite: (write) => {
        const event = cloudTrailEventOf(write);
        if (event) changes.send(event);
      },
    });
    parts.router = router;

    checkpoint();
    // 3. The environment Lambda gives the functions (the CDK app sets the same variables).
    env.AWS_REGION = region;
    env.AWS_ENDPOINT_URL = router.endpoint;
    env.FED_CONNECTIONS_URL = relay.connectionsUrl;
    env.FED_DISCOVERY_FUNCTION = FUNCTION_NAMES.discovery;
    env.FED_SUBSCRIPTIONS_FUNCTION = FUNCTION_NAMES.subscriptions;
    env.FED_AGENT_ID ||= 'local-agent';
    env.POWERTOOLS_LOG_LEVEL ||= 'WARN';
    env.POWERTOOLS_METRICS_DISABLED ||= 'true';
    const config: LoadedConfig = loadConfig(env);

    // 4. Ledger table and secrets.
    const credentials = { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY };
    const clientConfig = { region, endpoint: awsEndpoint, credentials };
    progress(`creating the ledger table ${config.agent.tableName} and the secrets...`);
    const dynamo = new DynamoDBClient(clientConfig);
    await createLedgerTable(dynamo, config.agent.tableName);
    const secrets = new SecretsManagerClient(clientConfig);
    const token = env.FED_RELAY_TOKEN?.trim() || generateToken();
    await putSecret(secrets, config.agent.relayTokenSecretName, token, 'replace');
    // Kept when it exists: keys of earlier subscriptions stay re-derivable.
    await putSecret(secrets, config.agent.apiKeySecretName, randomBytes(48).toString('base64url'), 'keep');
    secrets.destroy();

    // 4b. Fan-out (`fanOut` on): the queue and its dead-letter queue in the emulator, and a poller that
    // invokes discovery as Lambda's event source mapping would (batch size 1, maximum concurrency).
    let fanOutRuns: FanOutRunLedger | undefined;
    if (fanOutEnabled(config.agent)) {
      const sqs = new SQSClient(clientConfig);
      const queues = await createFanOutQueues(sqs, {
        name: `${config.agent.agentId}-fan-out`,
        maxReceiveCount: config.agent.fanOut.maxReceiveCount,
        visibilityTimeoutSeconds: (TIMEOUTS_MS.discovery ?? 300_000) / 1000 + 60,
      });
      env.FED_FAN_OUT_QUEUE_URL = queues.queueUrl;
      parts.fanOut = new FanOutPoller({
        sqs,
        queueUrl: queues.queueUrl,
        queueArn: queues.queueArn,
        region,
        maxConcurrency: config.agent.fanOut.maxConcurrency,
        deliver: invokeDiscovery,
        onError: (error) => onError('fan-out unit', error),
      });
      progress(
        `fan-out on: units on ${queues.queueUrl}, at most ${config.agent.fanOut.maxConcurrency} at once`,
      );
    }

    checkpoint();
    // 5. Demo data.
    let seeded: SeedResult | undefined;
    if (options.seed !== false) {
      const apiGateway = new APIGatewayClient({
        ...clientConfig,
        endpoint: emulatorEndpoint,
        maxAttempts: 3,
      });
      const demo = demoSeed();
      const names = await restApiNames(apiGateway);
      if (demo.apis.every((api) => names.has(api.name))) {
        progress('demo APIs already present in the emulator: not seeding again');
      } else {
        progress(
          `seeding ${demo.apis.length} demo REST APIs and ${demo.usagePlans?.length ?? 0} usage plans...`,
        );
        seeded = await seed(apiGateway, demo, { concurrency: 4 });
        progress(`seeded in ${Math.round(seeded.durationMs)} ms`);
      }
      apiGateway.destroy();
    }

    checkpoint();
    // 6. The handler modules, loaded with that environment (their cold start).
    progress('loading the functions...');
    const modules: Record<string, string> = {
      [FUNCTION_NAMES.discovery]: '../functions/discovery/handler.js',
      [FUNCTION_NAMES.subscriptions]: '../functions/subscriptions/handler.js',
      [FUNCTION_NAMES.relayAuthorizer]: '../functions/relay-authorizer/handler.js',
      [FUNCTION_NAMES.relayConnection]: '../functions/relay-connection/handler.js',
      [FUNCTION_NAMES.relayCommand]: '../functions/relay-command/handler.js',
    };
    for (const [name, path] of Object.entries(modules)) {
      const module = (await import(path)) as HandlerModule;
      if (typeof module.handler !== 'function') throw new Error(`${path} exports no handler`);
      handlers.set(name, module.handler);
    }
    ready();

    const ledgerTable = {
      client: (await import('@aws-sdk/lib-dynamodb')).DynamoDBDocumentClient.from(dynamo),
      tableName: config.agent.tableName,
    };
    const catalogRepository = new CatalogRepository(ledgerTable);
    if (parts.fanOut) {
      fanOutRuns = new FanOutRunLedger(ledgerTable);
      parts.fanOut.start();
    }
    /** A fanned-out run's answer once it completed (the scheduler's run answers that it continues). */
    const completedRun = async (result: unknown): Promise<unknown> => {
      const started = result as { runId?: string; status?: string } | undefined;
      if (!fanOutRuns || started?.status !== 'running' || !started.runId) return result;
      for (const until = Date.now() + (TIMEOUTS_MS.discovery ?? 300_000); Date.now() < until && !stopped; ) {
        const run = await fanOutRuns.getRun(started.runId);
        if (run?.status === RunStatus.COMPLETED) return runSummary({ ledger: fanOutRuns }, run);
        await new Promise((r) => setTimeout(r, 250));
      }
      return result;
    };
    const runDiscovery = (): Promise<unknown> => {
      if (stopped) return Promise.reject(new Error('the local runtime is stopped'));
      const context = createLambdaContext({
        functionName: FUNCTION_NAMES.discovery,
        region,
        accountId,
        timeoutMs: TIMEOUTS_MS.discovery,
      });
      const run = fn(FUNCTION_NAMES.discovery)(scheduledEvent(region, accountId), context).then(completedRun);
      discoveryRun = run.catch(() => undefined);
      return run;
    };

    checkpoint();
    // 7. First discovery, then the schedule (a tick is skipped while a run is in progress).
    progress('running the first discovery...');
    const firstDiscovery = await runDiscovery();
    if (scheduleSeconds > 0) {
      let running = false;
      timer = setInterval(() => {
        if (running || stopped) return;
        running = true;
        runDiscovery()
          .then((result) => options.onDiscovery?.(result))
          .catch((error: unknown) => onError('scheduled discovery', error))
          .finally(() => {
            running = false;
          });
      }, scheduleSeconds * 1000);
      timer.unref();
    }
    // As the subscriptions function's hourly rule (infra/constructs/subscriptions.ts).
    revocationTimer = setInterval(() => {
      if (stopped) return;
      const context = createLambdaContext({
        functionName: FUNCTION_NAMES.subscriptions,
        region,
        accountId,
        timeoutMs: TIMEOUTS_MS.subscriptions,
      });
      fn(FUNCTION_NAMES.subscriptions)({ action: 'finish-revocations' }, context).catch((error: unknown) =>
        onError('scheduled finish-revocations', error),
      );
    }, FINISH_REVOCATIONS_INTERVAL_MS);
    revocationTimer.unref();

    return {
      relayUrl: relay.url,
      connectionsUrl: relay.connectionsUrl,
      lambdaUrl: lambda.url,
      awsEndpoint: router.endpoint,
      emulatorEndpoint,
      fidelityProxy: parts.proxy !== undefined,
      ownsEmulator: parts.moto !== undefined,
      region,
      accountId,
      token,
      tableName: config.agent.tableName,
      ...(seeded ? { seeded } : {}),
      firstDiscovery,
      catalog: () => catalogRepository.listAll(),
      runDiscovery,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
