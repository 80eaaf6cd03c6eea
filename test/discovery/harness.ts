/**
 * Discovery wired to the emulator: API Gateway and STS through the fidelity proxy (counted, policed),
 * the ledger in moto's DynamoDB (direct, not counted), a fresh ledger table per call.
 */
import { randomUUID } from 'node:crypto';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  type AgentConfigInput,
  AwsClientFactory,
  CatalogRepository,
  createLedgerTable,
  DefinitionStore,
  type DiscoveryDeps,
  DiscoveryEngine,
  type DiscoverySettings,
  discoverySettingsOf,
  LeaseRepository,
  type LedgerTable,
  ledgerPlanRevocations,
  Outbox,
  parseAgentConfig,
  RunRepository,
  SubscriptionRepository,
} from '../../layers/federation-core/src/index.js';
import { type Emulator, TEST_CREDENTIALS } from '../support/emulator.js';

export interface DiscoveryHarness {
  readonly engine: DiscoveryEngine;
  readonly deps: DiscoveryDeps;
  readonly table: LedgerTable;
  readonly catalog: CatalogRepository;
  readonly outbox: Outbox;
  readonly definitions: DefinitionStore;
  readonly runs: RunRepository;
  readonly leases: LeaseRepository;
  readonly subscriptions: SubscriptionRepository;
  readonly clients: AwsClientFactory;
  /** A second engine on the same ledger and clients, with other settings. */
  withConfig(config: AgentConfigInput, settings?: Partial<DiscoverySettings>): DiscoveryEngine;
}

/** Fast retries for tests: the same policy, shorter waits. */
export const TEST_RETRY = { baseDelayMs: 5, maxDelayMs: 20, maxAttempts: 4 } as const;

export async function createLedger(emu: Emulator): Promise<LedgerTable> {
  const tableName = `ledger-${randomUUID().slice(0, 8)}`;
  const dynamo = emu.dynamoDb();
  await createLedgerTable(dynamo, tableName);
  return {
    client: DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } }),
    tableName,
  };
}

export async function discoveryHarness(
  emu: Emulator,
  config: AgentConfigInput = {},
  settings: Partial<DiscoverySettings> = {},
): Promise<DiscoveryHarness> {
  const table = await createLedger(emu);
  const clients = new AwsClientFactory({
    region: emu.region,
    endpoint: emu.endpoint,
    credentials: { ...TEST_CREDENTIALS },
  });
  const catalog = new CatalogRepository(table);
  const outbox = new Outbox(table, { retentionDays: 7 });
  const definitions = new DefinitionStore(table);
  const runs = new RunRepository(table);
  const leases = new LeaseRepository(table);
  const subscriptions = new SubscriptionRepository(table);
  const deps: DiscoveryDeps = {
    apiGateway: (target) => clients.apiGateway(target),
    callerAccountId: async () =>
      (await clients.sts().send(new GetCallerIdentityCommand({}))).Account as string,
    catalog,
    outbox,
    definitions,
    runs,
    leases,
    revocations: ledgerPlanRevocations(subscriptions),
  };
  const withConfig = (input: AgentConfigInput, extra: Partial<DiscoverySettings> = {}) => {
    const agent = parseAgentConfig(input);
    return new DiscoveryEngine(deps, {
      ...discoverySettingsOf(agent, emu.region),
      retry: TEST_RETRY,
      ...extra,
    });
  };
  return {
    engine: withConfig(config, settings),
    deps,
    table,
    catalog,
    outbox,
    definitions,
    runs,
    leases,
    subscriptions,
    clients,
    withConfig,
  };
}
