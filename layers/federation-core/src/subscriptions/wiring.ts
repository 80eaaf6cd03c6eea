/**
 * Builds the subscriptions function's adapters from the loaded config: the saga's service with its
 * repositories, clients and key material, the outbox and relay publisher, and the sweeper's deps.
 */
import type { AwsClientFactory } from '../aws/clients.js';
import { RateLimiterRegistry } from '../aws/rate-limiter.js';
import { effectiveSources, type LoadedConfig } from '../config/load.js';
import { CatalogRepository } from '../ledger/catalog.js';
import { ConnectionRepository } from '../ledger/connections.js';
import { Outbox } from '../ledger/outbox.js';
import { SubscriptionRepository } from '../ledger/subscriptions.js';
import type { LedgerTable } from '../ledger/table.js';
import type { Logger } from '../logger.js';
import { noRelay, type RelayPublisher } from '../relay/ports.js';
import { ConnectionPublisher } from '../relay/publisher.js';
import { SecretCache } from '../secrets/secret-cache.js';
import { SecretKeyMaterialProvider } from './key-material.js';
import { type SubscriptionHooks, SubscriptionService } from './service.js';
import type { SweeperDeps } from './sweeper.js';

export interface SubscriptionsWiringOptions {
  readonly config: LoadedConfig;
  readonly clients: AwsClientFactory;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Secret cache TTL (default 60 s): how soon a rotated HMAC secret is used for new subscriptions. */
  readonly secretTtlMs?: number;
  readonly hooks?: SubscriptionHooks;
}

export interface SubscriptionsWiring {
  readonly table: LedgerTable;
  readonly service: SubscriptionService;
  readonly outbox: Outbox;
  /** `@connections` publisher when the relay is configured (`FED_CONNECTIONS_URL`), else `noRelay`. */
  readonly publisher: RelayPublisher;
}

/**
 * Builds the subscriptions function's adapters from the loaded config: ledger repositories, the
 * API Gateway clients per account-region (through each source's role), one rate limiter per
 * account-region, the HMAC key material from Secrets Manager, and the relay publisher.
 */
export function createSubscriptionsWiring(options: SubscriptionsWiringOptions): SubscriptionsWiring {
  const { config, clients } = options;
  const table: LedgerTable = { client: clients.dynamoDocument(), tableName: config.agent.tableName };
  const service = new SubscriptionService({
    catalog: new CatalogRepository(table),
    subscriptions: new SubscriptionRepository(table),
    apiGateway: (target) => clients.apiGateway(target),
    sources: effectiveSources(config.agent, config.runtime.region),
    keys: new SecretKeyMaterialProvider(
      new SecretCache(clients.secretsManager(), { ttlMs: options.secretTtlMs }),
      config.agent.apiKeySecretName,
    ),
    limiters: new RateLimiterRegistry(config.agent.rateLimit),
    logger: options.logger,
    hooks: options.hooks,
  });
  const outbox = new Outbox(table, { retentionDays: config.agent.outboxRetentionDays });
  const connectionsUrl = config.runtime.connectionsUrl;
  const publisher: RelayPublisher = connectionsUrl
    ? new ConnectionPublisher({
        client: clients.apiGatewayManagement(connectionsUrl),
        connections: new ConnectionRepository(table),
        logger: options.logger,
      })
    : noRelay;
  return { table, service, outbox, publisher };
}

/** Builds the sweeper's deps like the subscriptions function's wiring: same table, clients and limits. */
export function createSweeperDeps(options: {
  readonly config: LoadedConfig;
  readonly clients: AwsClientFactory;
  readonly table: LedgerTable;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly limiters?: RateLimiterRegistry;
}): SweeperDeps {
  return {
    enabled: options.config.agent.sweepLostKeys,
    table: options.table,
    apiGateway: (target) => options.clients.apiGateway(target),
    limiters: options.limiters ?? new RateLimiterRegistry(options.config.agent.rateLimit),
    logger: options.logger,
  };
}
