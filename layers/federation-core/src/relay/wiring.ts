import type { AwsClientFactory } from '../aws/clients.js';
import { effectiveSources, type LoadedConfig } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { CatalogRepository } from '../ledger/catalog.js';
import { ConnectionRepository } from '../ledger/connections.js';
import { DefinitionStore } from '../ledger/definitions.js';
import { Outbox } from '../ledger/outbox.js';
import { RunRepository } from '../ledger/runs.js';
import type { LedgerTable } from '../ledger/table.js';
import type { Logger } from '../logger.js';
import { type FunctionInvoker, LambdaInvoker } from './invoke.js';
import { ConnectionPublisher, type DefinitionLoader } from './publisher.js';
import { RelayService } from './service.js';

export interface RelayWiringOptions {
  readonly config: LoadedConfig;
  readonly clients: AwsClientFactory;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Loads definition documents for `api.upserted`. Default: the ledger's DefinitionStore. */
  readonly loadDefinition?: DefinitionLoader;
  /** The last discovery run summary, for `ping`. Default: the ledger's RunRepository. */
  readonly latestRun?: () => Promise<unknown | undefined>;
  /** How other functions are invoked. Default: the Lambda API through `clients.lambda()`. */
  readonly invoker?: FunctionInvoker;
}

export interface RelayWiring {
  readonly table: LedgerTable;
  readonly connections: ConnectionRepository;
  readonly outbox: Outbox;
  readonly catalog: CatalogRepository;
  readonly publisher: ConnectionPublisher;
  readonly service: RelayService;
}

/**
 * Builds the relay's adapters from the loaded config: the ledger repositories, the `@connections`
 * publisher and the Lambda invoker. Used by the relay handlers at cold start, by discovery and
 * subscriptions to publish their events, and by the local runtime.
 */
export function createRelayWiring(options: RelayWiringOptions): RelayWiring {
  const { config, clients } = options;
  const connectionsUrl = config.runtime.connectionsUrl;
  if (!connectionsUrl) {
    throw new ConfigError('FED_CONNECTIONS_URL is not set: expected the relay stage’s @connections URL');
  }
  const table: LedgerTable = { client: clients.dynamoDocument(), tableName: config.agent.tableName };
  const connections = new ConnectionRepository(table);
  const outbox = new Outbox(table, { retentionDays: config.agent.outboxRetentionDays });
  const catalog = new CatalogRepository(table);
  const definitions = new DefinitionStore(table);
  const runs = new RunRepository(table);
  const publisher = new ConnectionPublisher({
    client: clients.apiGatewayManagement(connectionsUrl),
    connections,
    loadDefinition: options.loadDefinition ?? ((ref) => definitions.getDocument(ref.sha256)),
    logger: options.logger,
  });
  const service = new RelayService({
    publisher,
    connections,
    outbox,
    catalog,
    invoker: options.invoker ?? new LambdaInvoker(clients.lambda()),
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
    latestRun: options.latestRun ?? (() => runs.latest()),
    logger: options.logger,
  });
  return { table, connections, outbox, catalog, publisher, service };
}

/** Memoises a factory: the first call builds, later calls reuse (cold-start wiring that may throw). */
export function once<T>(build: () => T): () => T {
  let built: { value: T } | undefined;
  return () => {
    built ??= { value: build() };
    return built.value;
  };
}
