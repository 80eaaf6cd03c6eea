import {
  CreateTableCommand,
  type DynamoDBClient,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * The ledger: one DynamoDB table, string keys `pk`/`sk`, one generic GSI (`gsi1pk`/`gsi1sk`) for the
 * few listings that cross partitions, a sparse one (`gsi2pk`/`gsi2sk`) for the work still owed (the keys
 * of revoked subscriptions), TTL on `expiresAt` (epoch seconds). DynamoDB deletes expired
 * items only eventually (an emulator never does), so every reader also treats an item whose
 * `expiresAt` has passed as absent.
 */
export const LEDGER_KEYS = {
  partitionKey: 'pk',
  sortKey: 'sk',
  gsi1: { name: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
  gsi2: { name: 'gsi2', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
  ttlAttribute: 'expiresAt',
} as const;

/** Key layout of every record kind. Repositories build keys only through these. */
export const keys = {
  /**
   * Catalog entry of one federated API. Its plans are embedded, so the one read a subscription makes
   * gives it the API, the plan and the usage plan id. Listed per account-region through gsi1.
   */
  api: (apiId: string) => ({ pk: `API#${apiId}`, sk: 'API' }),
  apiIndex: (accountId: string, region: string, apiId: string) => ({
    gsi1pk: 'CATALOG',
    gsi1sk: `${accountId}#${region}#${apiId}`,
  }),
  /** Compressed, split OpenAPI document, content-addressed. */
  definitionPart: (sha256: string, index: number) => ({
    pk: `DEF#${sha256}`,
    sk: `PART#${String(index).padStart(5, '0')}`,
  }),
  subscription: (subscriptionId: string) => ({ pk: `SUB#${subscriptionId}`, sk: 'SUB' }),
  /** Subscriptions of a usage plan, through gsi1 (for plan.removed). */
  subscriptionIndex: (accountId: string, region: string, usagePlanId: string, subscriptionId: string) => ({
    gsi1pk: `USAGEPLAN#${accountId}#${region}#${usagePlanId}`,
    gsi1sk: `SUB#${subscriptionId}`,
  }),
  /**
   * A REVOKED subscription whose key is still to be deleted, through the sparse gsi2, oldest
   * revocation first: set with the revocation, removed with `keyDeleted`.
   */
  keyToDelete: (revokedAt: string, subscriptionId: string) => ({
    gsi2pk: 'KEYS_TO_DELETE',
    gsi2sk: `${revokedAt}#${subscriptionId}`,
  }),
  connection: (connectionId: string) => ({ pk: `CONN#${connectionId}`, sk: 'CONN' }),
  connectionIndex: (connectionId: string) => ({ gsi1pk: 'CONNECTIONS', gsi1sk: connectionId }),
  run: (runId: string) => ({ pk: `RUN#${runId}`, sk: 'RUN' }),
  /** One account-region of a fanned-out run: its summary and its claim, in the run's partition. */
  runUnit: (runId: string, unitKey: string) => ({ pk: `RUN#${runId}`, sk: `UNIT#${unitKey}` }),
  /** A unit's checkpoint (gzip'ed JSON cut into parts), in the run's partition. */
  runCheckpointPart: (runId: string, unitKey: string, index: number) => ({
    pk: `RUN#${runId}`,
    sk: `CKPT#${unitKey}#${String(index).padStart(5, '0')}`,
  }),
  /** Runs by start time through gsi1, newest last. */
  runIndex: (startedAt: string, runId: string) => ({ gsi1pk: 'RUNS', gsi1sk: `${startedAt}#${runId}` }),
  /** Outbox events in one partition, ordered by zero-padded sequence. */
  event: (seq: number) => ({ pk: 'OUTBOX', sk: `EVENT#${String(seq).padStart(15, '0')}` }),
  /** Counter that hands out outbox sequence numbers (atomic ADD). */
  eventSequence: () => ({ pk: 'OUTBOX', sk: 'SEQ' }),
  /** A writer's hold on the outbox: snapshots do not hand out cursors past its first event. */
  outboxHold: (id: string) => ({ pk: 'OUTBOX#HOLD', sk: `HOLD#${id}` }),
  /** The mark of an outbox append made at most once under an id (`discovery.completed` of a fanned-out run). */
  outboxOnce: (id: string) => ({ pk: 'OUTBOX#ONCE', sk: `ONCE#${id}` }),
  lease: (name: string) => ({ pk: `LEASE#${name}`, sk: 'LEASE' }),
} as const;

/** The table a repository works on: the document client and the table name, injected. */
export interface LedgerTable {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
}

/** Epoch seconds, the unit of the TTL attribute. */
/** True for the error DynamoDB answers when a write's condition did not hold. */
export function isConditionFailed(error: unknown): boolean {
  return (error as { name?: string } | undefined)?.name === 'ConditionalCheckFailedException';
}

export function epochSeconds(date: Date = new Date()): number {
  return Math.floor(date.getTime() / 1000);
}

/** True when an item carries an `expiresAt` in the past: DynamoDB may not have deleted it yet. */
export function isExpired(item: { expiresAt?: unknown } | undefined, now: Date = new Date()): boolean {
  return typeof item?.expiresAt === 'number' && item.expiresAt <= epochSeconds(now);
}

/**
 * Creates the ledger table with the same key schema as the CDK stack. For the local runtime and
 * tests only: in AWS the table belongs to the stateful stack.
 */
export async function createLedgerTable(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
          { AttributeName: 'gsi1pk', AttributeType: 'S' },
          { AttributeName: 'gsi1sk', AttributeType: 'S' },
          { AttributeName: 'gsi2pk', AttributeType: 'S' },
          { AttributeName: 'gsi2sk', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: 'gsi1',
            KeySchema: [
              { AttributeName: 'gsi1pk', KeyType: 'HASH' },
              { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
          {
            IndexName: 'gsi2',
            KeySchema: [
              { AttributeName: 'gsi2pk', KeyType: 'HASH' },
              { AttributeName: 'gsi2sk', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'KEYS_ONLY' },
          },
        ],
      }),
    );
  } catch (error) {
    if ((error as { name?: string }).name !== 'ResourceInUseException') throw error;
  }
  await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: tableName });
  await client.send(
    new UpdateTimeToLiveCommand({
      TableName: tableName,
      TimeToLiveSpecification: { AttributeName: LEDGER_KEYS.ttlAttribute, Enabled: true },
    }),
  );
}
