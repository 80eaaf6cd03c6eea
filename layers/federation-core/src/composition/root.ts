/**
 * The composition root: the one place that builds the agent's adapters from the loaded config. Every
 * repository, client and publisher is built once per container (lazily: a function only builds what
 * it uses) and shared by the capabilities that need it; the ports between capabilities (revocations,
 * the run ledger for `ping`, the functions reached by `Invoke`) are bound here and nowhere else.
 * Used by every function's handler module at cold start, by the CLI, the local runtime, the benchmark
 * and the tests. See docs/architecture.md.
 */
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { AwsClientFactory } from '../aws/clients.js';
import { type FunctionInvoker, LambdaInvoker } from '../aws/invoke.js';
import { SqsWorkQueue } from '../aws/queue.js';
import { RateLimiterRegistry } from '../aws/rate-limiter.js';
import { effectiveSources, fanOutEnabled, type LoadedConfig, loadConfig } from '../config/load.js';
import { DiscoveryEngine, type DiscoverySettings, discoverySettingsOf } from '../discovery/engine.js';
import type { FanOutDeps, FanOutSettings } from '../discovery/fan-out.js';
import { FanOutRunLedger } from '../discovery/run-ledger.js';
import { RunRepository } from '../discovery/runs.js';
import { AwsError, ConfigError } from '../errors.js';
import { CatalogRepository } from '../ledger/catalog.js';
import { ConnectionRepository } from '../ledger/connections.js';
import { DefinitionStore } from '../ledger/definitions.js';
import { LeaseRepository } from '../ledger/lease.js';
import { Outbox } from '../ledger/outbox.js';
import type { LedgerTable } from '../ledger/table.js';
import { createLogger, type Logger } from '../logger.js';
import { once } from '../once.js';
import { functionPort } from '../ports/functions.js';
import { handingKeysTo, type PlanRevocations } from '../ports/revocations.js';
import { noRelay, type RelayPublisher } from '../publishing/ports.js';
import { ConnectionPublisher, type DefinitionLoader } from '../publishing/publisher.js';
import { RelayService } from '../relay/service.js';
import { SecretCache } from '../secrets/secret-cache.js';
import { SecretKeyMaterialProvider } from '../subscriptions/key-material.js';
import { ledgerPlanRevocations } from '../subscriptions/plan-removal.js';
import { SubscriptionRepository } from '../subscriptions/repository.js';
import { type SubscriptionHooks, SubscriptionService } from '../subscriptions/service.js';
import type { SweeperDeps } from '../subscriptions/sweeper.js';

export interface CompositionOptions {
  readonly config: LoadedConfig;
  readonly clients: AwsClientFactory;
  readonly logger?: Logger;
  /** Overrides of discovery's engine settings (tests, the local runtime). */
  readonly settings?: Partial<DiscoverySettings>;
  /** Secret cache TTL (default 60 s): how soon a rotated HMAC secret is used for new subscriptions. */
  readonly secretTtlMs?: number;
  /** Test and chaos hooks of the subscribe saga. */
  readonly hooks?: SubscriptionHooks;
  /** The subscriptions saga's clock (tests: a `finish-revocations` an hour later). Default `Date.now`. */
  readonly now?: () => number;
  /** Loads definition documents for `api.upserted`. Default: the ledger's DefinitionStore. */
  readonly loadDefinition?: DefinitionLoader;
  /** The last discovery run summary, for `ping`. Default: discovery's RunRepository. */
  readonly latestRun?: () => Promise<unknown | undefined>;
  /** How other functions are invoked. Default: the Lambda API through `clients.lambda()`. */
  readonly invoker?: FunctionInvoker;
  /** Overrides of fan-out's settings and its invocation budget (tests, the benchmark). */
  readonly fanOut?: Partial<FanOutSettings> & { readonly budget?: FanOutDeps['budget'] };
  /** Most messages one relay-command invocation of a `sync` sends (tests); default: as time allows. */
  readonly syncChunkSize?: number;
}

/** The shared ledger adapters: one of each per container. */
export interface Ledger {
  readonly table: LedgerTable;
  readonly catalog: CatalogRepository;
  readonly definitions: DefinitionStore;
  readonly outbox: Outbox;
  readonly connections: ConnectionRepository;
}

export interface DiscoveryWiring {
  readonly table: LedgerTable;
  readonly engine: DiscoveryEngine;
  readonly catalog: CatalogRepository;
  readonly definitions: DefinitionStore;
  readonly runs: RunRepository;
  readonly outbox: Outbox;
  /** `@connections` publisher when `runtime.connectionsUrl` is set, else `noRelay` (events stay in the outbox). */
  readonly publisher: RelayPublisher;
  /** Fan-out, when it is on (`fanOut`) and its queue is configured (`FED_FAN_OUT_QUEUE_URL`). */
  readonly fanOut?: FanOutDeps;
  /** The ledger of fanned-out runs. */
  readonly fanOutRuns: FanOutRunLedger;
}

export interface SubscriptionsWiring {
  readonly table: LedgerTable;
  readonly service: SubscriptionService;
  readonly outbox: Outbox;
  /** `@connections` publisher when the relay is configured (`FED_CONNECTIONS_URL`), else `noRelay`. */
  readonly publisher: RelayPublisher;
  /** The lost-key sweeper's deps: the same table, clients and rate limiters as the saga. */
  readonly sweeper: SweeperDeps;
}

export interface RelayWiring {
  readonly table: LedgerTable;
  /** How the relay functions invoke each other (relay-connection schedules its own `hello`). */
  readonly invoker: FunctionInvoker;
  readonly connections: ConnectionRepository;
  readonly outbox: Outbox;
  readonly catalog: CatalogRepository;
  readonly publisher: ConnectionPublisher;
  readonly service: RelayService;
}

/** Everything a function of the agent may use, each part built on first use and then reused. */
export interface Composition {
  readonly ledger: () => Ledger;
  readonly discovery: () => DiscoveryWiring;
  readonly subscriptions: () => SubscriptionsWiring;
  readonly relay: () => RelayWiring;
}

/** Builds the composition root of one container. Nothing is built until a part is asked for. */
export function createComposition(options: CompositionOptions): Composition {
  const { config, clients, logger } = options;

  const ledger = once((): Ledger => {
    const table: LedgerTable = { client: clients.dynamoDocument(), tableName: config.agent.tableName };
    return {
      table,
      catalog: new CatalogRepository(table),
      definitions: new DefinitionStore(table),
      outbox: new Outbox(table, { retentionDays: config.agent.outboxRetentionDays }),
      connections: new ConnectionRepository(table),
    };
  });
  const runs = once(() => new RunRepository(ledger().table));
  const subscriptionRepository = once(() => new SubscriptionRepository(ledger().table));
  const invoker = once(() => options.invoker ?? new LambdaInvoker(clients.lambda()));
  const loadDefinition = (): DefinitionLoader =>
    options.loadDefinition ?? ((ref) => ledger().definitions.getDocument(ref.sha256));

  /** The `@connections` publisher, or undefined when the relay is not configured. */
  const connectionPublisher = once((): ConnectionPublisher | undefined => {
    const connectionsUrl = config.runtime.connectionsUrl;
    if (!connectionsUrl) return undefined;
    return new ConnectionPublisher({
      client: clients.apiGatewayManagement(connectionsUrl),
      connections: ledger().connections,
      loadDefinition: loadDefinition(),
      logger,
    });
  });
  const publisher = (): RelayPublisher => connectionPublisher() ?? noRelay;

  // The account of the function's own credentials, asked once per container (again after a failure).
  let account: Promise<string> | undefined;
  const callerAccountId = () => {
    account ??= clients
      .sts()
      .send(new GetCallerIdentityCommand({}))
      .then((out) => {
        if (!out.Account) throw new AwsError('GetCallerIdentity returned no account');
        return out.Account;
      })
      .catch((error) => {
        account = undefined;
        throw error;
      });
    return account;
  };

  /**
   * Cross-capability port: discovery's plan removals revoke subscriptions in the ledger, then hand
   * their keys to the subscriptions function (asynchronous `revoke-keys`), the role that may delete
   * them. Without a subscriptions function name (the CLI, tests) the keys wait for `unsubscribe`.
   */
  const revocations = (): PlanRevocations => {
    const ledgerRevocations = ledgerPlanRevocations(subscriptionRepository());
    const name = config.runtime.subscriptionsFunctionName;
    if (!name) return ledgerRevocations;
    return handingKeysTo(ledgerRevocations, functionPort(invoker(), name, 'subscriptions'));
  };

  const discovery = once((): DiscoveryWiring => {
    const { table, catalog, definitions, outbox } = ledger();
    const leases = new LeaseRepository(table);
    const organizations = (roleArn?: string) => clients.organizations(roleArn);
    const engine = new DiscoveryEngine(
      {
        apiGateway: (target) => clients.apiGateway(target),
        callerAccountId,
        catalog,
        outbox,
        definitions,
        runs: runs(),
        leases,
        revocations: revocations(),
        logger,
        organizations,
      },
      { ...discoverySettingsOf(config.agent, config.runtime.region), ...options.settings },
    );
    const fanOutRuns = new FanOutRunLedger(table, { retentionDays: config.agent.outboxRetentionDays });
    const queueUrl = config.runtime.fanOutQueueUrl;
    const { budget, ...fanOutOverrides } = options.fanOut ?? {};
    const fanOut: FanOutDeps | undefined =
      queueUrl && fanOutEnabled(config.agent)
        ? {
            ledger: fanOutRuns,
            queue: new SqsWorkQueue(clients.sqs(), queueUrl),
            unit: {
              apiGateway: (target) => clients.apiGateway(target),
              catalog,
              outbox,
              definitions,
              leases,
              revocations: revocations(),
              logger,
              now: () => new Date(),
            },
            expansion: { callerAccountId, organizations },
            outbox,
            publisher: publisher(),
            limiters: new RateLimiterRegistry(options.settings?.rateLimit ?? config.agent.rateLimit),
            settings: {
              sources: config.agent.sources,
              defaultRegion: config.runtime.region,
              acceptApiWithoutUsagePlan: config.agent.acceptApiWithoutUsagePlan,
              labels: config.agent.labels,
              callConcurrency: options.settings?.callConcurrency ?? 8,
              ...(options.settings?.retry ? { retry: options.settings.retry } : {}),
              maxReceiveCount: config.agent.fanOut.maxReceiveCount,
              deadlineMs: config.agent.fanOut.deadlineMinutes * 60_000,
              waitMs: config.agent.fanOut.waitSeconds * 1000,
              ...fanOutOverrides,
            },
            logger,
            ...(budget ? { budget } : {}),
          }
        : undefined;
    return {
      table,
      engine,
      catalog,
      definitions,
      runs: runs(),
      outbox,
      publisher: publisher(),
      fanOutRuns,
      ...(fanOut ? { fanOut } : {}),
    };
  });

  const subscriptions = once((): SubscriptionsWiring => {
    const { table, catalog, outbox } = ledger();
    // One registry for the saga and the sweeper: both call API Gateway in the same account-regions.
    const limiters = subscriptionLimiters(config);
    const apiGateway = (target: Parameters<AwsClientFactory['apiGateway']>[0]) => clients.apiGateway(target);
    const service = new SubscriptionService({
      catalog,
      subscriptions: subscriptionRepository(),
      apiGateway,
      sources: effectiveSources(config.agent, config.runtime.region),
      keys: new SecretKeyMaterialProvider(
        new SecretCache(clients.secretsManager(), { ttlMs: options.secretTtlMs }),
        config.agent.apiKeySecretName,
      ),
      limiters,
      logger,
      hooks: options.hooks,
      ...(options.now ? { now: options.now } : {}),
    });
    const sweeper: SweeperDeps = {
      enabled: config.agent.sweepLostKeys,
      table,
      apiGateway,
      limiters,
      logger,
    };
    return { table, service, outbox, publisher: publisher(), sweeper };
  });

  const relay = once((): RelayWiring => {
    const connectionsUrl = config.runtime.connectionsUrl;
    const relayPublisher = connectionPublisher();
    if (!connectionsUrl || !relayPublisher) {
      throw new ConfigError('FED_CONNECTIONS_URL is not set: expected the relay stage’s @connections URL');
    }
    const { table, connections, outbox, catalog } = ledger();
    const service = new RelayService({
      publisher: relayPublisher,
      connections,
      outbox,
      catalog,
      invoker: invoker(),
      agent: {
        agentId: config.agent.agentId,
        version: config.runtime.version,
        sources: effectiveSources(config.agent, config.runtime.region).map((s) => ({
          name: s.name,
          ...(s.accountId ? { accountId: s.accountId } : {}),
          regions: s.regions,
        })),
      },
      discoveryFunctionName: config.runtime.discoveryFunctionName,
      subscriptionsFunctionName: config.runtime.subscriptionsFunctionName,
      latestRun: options.latestRun ?? (() => runs().latest()),
      logger,
      ...(options.syncChunkSize === undefined ? {} : { syncChunkSize: options.syncChunkSize }),
    });
    return { table, invoker: invoker(), connections, outbox, catalog, publisher: relayPublisher, service };
  });

  return { ledger, discovery, subscriptions, relay };
}

/** Discovery's part of a new composition root (the CLI, tests). */
export function createDiscoveryWiring(options: CompositionOptions): DiscoveryWiring {
  return createComposition(options).discovery();
}

/** The subscriptions function's part of a new composition root (tests, the benchmark). */
export function createSubscriptionsWiring(options: CompositionOptions): SubscriptionsWiring {
  return createComposition(options).subscriptions();
}

/** The relay's part of a new composition root (tests, the benchmark). */
export function createRelayWiring(options: CompositionOptions): RelayWiring {
  return createComposition(options).relay();
}

/** What a function's handler module builds at cold start: its config, clients, logger and root. */
export interface FunctionComposition {
  readonly config: LoadedConfig;
  readonly clients: AwsClientFactory;
  readonly logger: Logger;
  readonly root: Composition;
}

/**
 * The cold start of one Lambda function (`service` names its logs): the config from the environment
 * (validated once; a missing variable throws), the client factory, the logger and the composition root.
 */
export function functionComposition(service: string, env?: NodeJS.ProcessEnv): FunctionComposition {
  const config = loadConfig(env);
  const clients = new AwsClientFactory({
    region: config.runtime.region,
    endpoint: config.runtime.endpoint,
    assumeRoleSessionPolicy: config.runtime.assumeRoleSessionPolicy,
  });
  const logger = createLogger(service);
  return { config, clients, logger, root: createComposition({ config, clients, logger }) };
}

/**
 * The buckets of the subscriptions function: the account-region's share of the management API
 * (`rateLimit`) and the key bucket of `CreateApiKey`/`DeleteApiKey` (`apiKeyRateLimit`).
 */
export function subscriptionLimiters(config: Pick<LoadedConfig, 'agent'>): RateLimiterRegistry {
  return new RateLimiterRegistry(config.agent.rateLimit, config.agent.apiKeyRateLimit);
}
