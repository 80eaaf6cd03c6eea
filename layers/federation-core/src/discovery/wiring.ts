import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import type { AwsClientFactory } from '../aws/clients.js';
import type { LoadedConfig } from '../config/load.js';
import { AwsError } from '../errors.js';
import { CatalogRepository } from '../ledger/catalog.js';
import { ConnectionRepository } from '../ledger/connections.js';
import { DefinitionStore } from '../ledger/definitions.js';
import { LeaseRepository } from '../ledger/lease.js';
import { Outbox } from '../ledger/outbox.js';
import { RunRepository } from '../ledger/runs.js';
import { SubscriptionRepository } from '../ledger/subscriptions.js';
import type { LedgerTable } from '../ledger/table.js';
import type { Logger } from '../logger.js';
import { noRelay, type RelayPublisher } from '../relay/ports.js';
import { ConnectionPublisher } from '../relay/publisher.js';
import { DiscoveryEngine, type DiscoverySettings } from './engine.js';

export interface DiscoveryWiringOptions {
  readonly config: LoadedConfig;
  readonly clients: AwsClientFactory;
  readonly logger?: Logger;
  /** Overrides of the engine settings (tests, the local runtime). */
  readonly settings?: Partial<DiscoverySettings>;
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
}

/**
 * Builds discovery's adapters from the loaded config: ledger repositories, the engine (API Gateway
 * through the client factory, the caller's account from `sts:GetCallerIdentity`, asked once per
 * container) and the relay publisher. Used by the discovery function, the CLI and the local runtime.
 */
export function createDiscoveryWiring(options: DiscoveryWiringOptions): DiscoveryWiring {
  const { config, clients } = options;
  const table: LedgerTable = { client: clients.dynamoDocument(), tableName: config.agent.tableName };
  const catalog = new CatalogRepository(table);
  const definitions = new DefinitionStore(table);
  const runs = new RunRepository(table);
  const outbox = new Outbox(table, { retentionDays: config.agent.outboxRetentionDays });
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
        account = undefined; // ask again next time
        throw error;
      });
    return account;
  };
  const engine = new DiscoveryEngine(
    {
      apiGateway: (target) => clients.apiGateway(target),
      callerAccountId,
      catalog,
      outbox,
      definitions,
      runs,
      leases: new LeaseRepository(table),
      subscriptions: new SubscriptionRepository(table),
      logger: options.logger,
    },
    {
      sources: config.agent.sources,
      acceptApiWithoutUsagePlan: config.agent.acceptApiWithoutUsagePlan,
      labels: config.agent.labels,
      rateLimit: config.agent.rateLimit,
      concurrency: config.agent.concurrency,
      defaultRegion: config.runtime.region,
      ...options.settings,
    },
  );
  const connectionsUrl = config.runtime.connectionsUrl;
  const publisher: RelayPublisher = connectionsUrl
    ? new ConnectionPublisher({
        client: clients.apiGatewayManagement(connectionsUrl),
        connections: new ConnectionRepository(table),
        loadDefinition: (ref) => definitions.getDocument(ref.sha256),
        logger: options.logger,
      })
    : noRelay;
  return { table, engine, catalog, definitions, runs, outbox, publisher };
}
