import { DeleteCommand, PutCommand, paginateQuery } from '@aws-sdk/lib-dynamodb';
import { epochSeconds, isExpired, keys, type LedgerTable } from './table.js';

/** A control plane connected to the relay. */
export interface Connection {
  readonly connectionId: string;
  readonly connectedAt: string;
  /** Source IP as API Gateway reported it, for operators. */
  readonly sourceIp?: string;
  readonly userAgent?: string;
}

export interface ConnectionRepositoryOptions {
  /**
   * How long a record lives without a `$disconnect` (TTL). API Gateway closes a WebSocket connection
   * after 2 hours at most, so a record older than that is stale even if `$disconnect` never ran.
   * Default 2 h 10 min.
   */
  readonly ttlSeconds?: number;
  readonly now?: () => Date;
}

/** API Gateway's maximum WebSocket connection duration is 2 h; a margin covers clock skew. */
export const CONNECTION_TTL_SECONDS = 2 * 3600 + 600;

/**
 * Connection records (`CONN#`), listed through gsi1 (`CONNECTIONS`). Written on `$connect`, deleted on
 * `$disconnect` or when a post answers `GoneException`; the TTL removes what both missed, and readers
 * skip expired records because DynamoDB deletes them only eventually.
 */
export class ConnectionRepository {
  private readonly ttlSeconds: number;
  private readonly now: () => Date;

  constructor(
    private readonly table: LedgerTable,
    options: ConnectionRepositoryOptions = {},
  ) {
    this.ttlSeconds = options.ttlSeconds ?? CONNECTION_TTL_SECONDS;
    this.now = options.now ?? (() => new Date());
  }

  /** Records a connection (a repeat replaces it and renews its TTL). */
  async put(connection: Omit<Connection, 'connectedAt'> & { connectedAt?: string }): Promise<Connection> {
    const now = this.now();
    const record: Connection = { ...connection, connectedAt: connection.connectedAt ?? now.toISOString() };
    await this.table.client.send(
      new PutCommand({
        TableName: this.table.tableName,
        Item: {
          ...record,
          ...keys.connection(record.connectionId),
          ...keys.connectionIndex(record.connectionId),
          kind: 'CONN',
          expiresAt: epochSeconds(now) + this.ttlSeconds,
        },
      }),
    );
    return record;
  }

  /** Removes a connection record; removing an absent one is not an error. */
  async delete(connectionId: string): Promise<void> {
    await this.table.client.send(
      new DeleteCommand({ TableName: this.table.tableName, Key: keys.connection(connectionId) }),
    );
  }

  /** Every live connection, expired records skipped. */
  async list(): Promise<Connection[]> {
    const now = this.now();
    const connections: Connection[] = [];
    const pages = paginateQuery(
      { client: this.table.client },
      {
        TableName: this.table.tableName,
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :pk',
        ExpressionAttributeValues: { ':pk': keys.connectionIndex('').gsi1pk },
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) {
        if (isExpired(item, now)) continue;
        connections.push({
          connectionId: item.connectionId,
          connectedAt: item.connectedAt,
          ...(item.sourceIp ? { sourceIp: item.sourceIp } : {}),
          ...(item.userAgent ? { userAgent: item.userAgent } : {}),
        });
      }
    }
    return connections;
  }

  /** Number of live connections. */
  async count(): Promise<number> {
    return (await this.list()).length;
  }
}
