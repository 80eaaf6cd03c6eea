import { BatchWriteCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { EventType } from '../model.js';
import { epochSeconds, isExpired, keys, type LedgerTable } from './table.js';

/** An event as stored in the outbox and sent over the relay as `{ type: 'event', seq, event, payload }`. */
export interface OutboxEvent {
  readonly seq: number;
  readonly event: EventType;
  readonly payload: unknown;
  readonly createdAt: string;
}

export interface NewEvent {
  readonly event: EventType;
  readonly payload: unknown;
}

export interface OutboxOptions {
  /** How long events stay replayable with `sync` (TTL). */
  readonly retentionDays: number;
  readonly now?: () => Date;
}

const BATCH_WRITE_MAX = 25;

/**
 * The outbox: every change the control plane must learn about, with a monotonic sequence number, so
 * a control plane that was offline replays what it missed (`sync { since }`). Sequence numbers come
 * from an atomic counter; a number whose write failed leaves a gap, which readers tolerate.
 */
export class Outbox {
  private readonly now: () => Date;

  constructor(
    private readonly table: LedgerTable,
    private readonly options: OutboxOptions,
  ) {
    this.now = options.now ?? (() => new Date());
  }

  /** Appends events in order and returns them with their sequence numbers. */
  async append(events: readonly NewEvent[]): Promise<OutboxEvent[]> {
    if (events.length === 0) return [];
    const last = await this.reserve(events.length);
    const first = last - events.length + 1;
    const createdAt = this.now().toISOString();
    const expiresAt = epochSeconds(this.now()) + this.options.retentionDays * 86_400;
    const stored = events.map((e, i) => ({ seq: first + i, event: e.event, payload: e.payload, createdAt }));
    for (let i = 0; i < stored.length; i += BATCH_WRITE_MAX) {
      let requests = stored.slice(i, i + BATCH_WRITE_MAX).map((e) => ({
        PutRequest: { Item: { ...keys.event(e.seq), kind: 'EVENT', ...e, expiresAt } },
      }));
      // BatchWrite may leave items unprocessed under load: resend exactly those until none remain.
      for (let attempt = 0; requests.length > 0; attempt++) {
        const out = await this.table.client.send(
          new BatchWriteCommand({ RequestItems: { [this.table.tableName]: requests } }),
        );
        requests = (out.UnprocessedItems?.[this.table.tableName] ?? []) as typeof requests;
        if (requests.length > 0) await sleep(Math.min(1000, 25 * 2 ** attempt));
      }
    }
    return stored;
  }

  /** Events with a sequence greater than `since`, in order, at most `limit`. Expired events are absent. */
  async listAfter(since: number, limit = 1000): Promise<OutboxEvent[]> {
    const events: OutboxEvent[] = [];
    let startKey: Record<string, unknown> | undefined;
    const now = this.now();
    do {
      const out = await this.table.client.send(
        new QueryCommand({
          TableName: this.table.tableName,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: {
            ':pk': 'OUTBOX',
            ':from': keys.event(since + 1).sk,
            ':to': keys.event(999_999_999_999_999).sk,
          },
          ExclusiveStartKey: startKey,
          ConsistentRead: true,
          Limit: limit,
        }),
      );
      for (const item of out.Items ?? []) {
        if (isExpired(item, now)) continue;
        events.push({ seq: item.seq, event: item.event, payload: item.payload, createdAt: item.createdAt });
        if (events.length >= limit) return events;
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return events;
  }

  /** Sequence of the oldest event still replayable, or undefined when the outbox is empty. */
  async oldestSeq(): Promise<number | undefined> {
    return (await this.listAfter(0, 1))[0]?.seq;
  }

  /** The last sequence number handed out (0 when none). */
  async latestSeq(): Promise<number> {
    const out = await this.table.client.send(
      new QueryCommand({
        TableName: this.table.tableName,
        KeyConditionExpression: 'pk = :pk AND sk = :sk',
        ExpressionAttributeValues: { ':pk': 'OUTBOX', ':sk': keys.eventSequence().sk },
        ConsistentRead: true,
      }),
    );
    return (out.Items?.[0]?.last as number | undefined) ?? 0;
  }

  private async reserve(count: number): Promise<number> {
    const out = await this.table.client.send(
      new UpdateCommand({
        TableName: this.table.tableName,
        Key: keys.eventSequence(),
        UpdateExpression: 'ADD #last :n',
        ExpressionAttributeNames: { '#last': 'last' },
        ExpressionAttributeValues: { ':n': count },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    return out.Attributes?.last as number;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
