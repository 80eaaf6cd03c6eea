import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { epochSeconds, isConditionFailed, keys, type LedgerTable } from './table.js';

export interface Lease {
  readonly name: string;
  readonly owner: string;
  /** Epoch milliseconds. */
  readonly expiresAtMs: number;
}

export interface LeaseRepositoryOptions {
  readonly now?: () => Date;
}

/**
 * Named leases in the ledger (`LEASE#<name>`), the lock of the Powertools idempotency utility: one
 * conditional PutItem that succeeds when the lease is absent, expired (checked on `expiresAtMs` in
 * the condition, since DynamoDB deletes TTL'd items late) or already held by the same owner. Never
 * check-then-write. `expiresAt` (epoch seconds) lets DynamoDB's TTL clean up abandoned leases.
 */
export class LeaseRepository {
  private readonly now: () => Date;

  constructor(
    private readonly table: LedgerTable,
    options: LeaseRepositoryOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
  }

  /** Takes the lease for `ttlMs`; undefined when another owner holds an unexpired lease. */
  async acquire(name: string, owner: string, ttlMs: number): Promise<Lease | undefined> {
    const now = this.now();
    const expiresAtMs = now.getTime() + ttlMs;
    try {
      await this.table.client.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: {
            ...keys.lease(name),
            kind: 'LEASE',
            name,
            owner,
            acquiredAt: now.toISOString(),
            expiresAtMs,
            expiresAt: epochSeconds(new Date(expiresAtMs)) + 1,
          },
          ConditionExpression: 'attribute_not_exists(pk) OR expiresAtMs <= :now OR #owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':now': now.getTime(), ':owner': owner },
        }),
      );
      return { name, owner, expiresAtMs };
    } catch (error) {
      if (isConditionFailed(error)) return undefined;
      throw error;
    }
  }

  /** Extends a lease its owner still holds; false when it was lost (expired and taken over). */
  async renew(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const expiresAtMs = this.now().getTime() + ttlMs;
    try {
      await this.table.client.send(
        new UpdateCommand({
          TableName: this.table.tableName,
          Key: keys.lease(name),
          UpdateExpression: 'SET expiresAtMs = :exp, expiresAt = :ttl',
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: {
            ':exp': expiresAtMs,
            ':ttl': epochSeconds(new Date(expiresAtMs)) + 1,
            ':owner': owner,
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      throw error;
    }
  }

  /** Gives the lease up if `owner` still holds it; false when it did not. */
  async release(name: string, owner: string): Promise<boolean> {
    try {
      await this.table.client.send(
        new DeleteCommand({
          TableName: this.table.tableName,
          Key: keys.lease(name),
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': owner },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      throw error;
    }
  }

  /** The current holder, or undefined when the lease is free (absent or expired). */
  async get(name: string): Promise<Lease | undefined> {
    const out = await this.table.client.send(
      new GetCommand({ TableName: this.table.tableName, Key: keys.lease(name), ConsistentRead: true }),
    );
    const item = out.Item;
    if (!item || (item.expiresAtMs as number) <= this.now().getTime()) return undefined;
    return { name, owner: item.owner as string, expiresAtMs: item.expiresAtMs as number };
  }
}
