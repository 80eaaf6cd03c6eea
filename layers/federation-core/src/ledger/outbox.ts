import {
  DeleteCommand,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
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

/** Events per transaction: TransactWriteItems takes 100 actions (the counter and a hold take two). */
const TRANSACTION_EVENTS_MAX = 50;
/** Stay well under TransactWriteItems' 4 MB per transaction (items are at most 400 KB each). */
const TRANSACTION_BYTES_MAX = 2_000_000;
/** Attempts of one chunk when other appenders keep winning the counter. */
const APPEND_ATTEMPTS_MAX = 60;

/** A mark discovery puts next to its events until the catalog holds their changes (see {@link Outbox.append}). */
export interface OutboxHold {
  /** One per writer, e.g. `discovery#<account>/<region>`: a later hold with the same id replaces it. */
  readonly id: string;
  /** How long the hold counts if never released (a crashed writer): the writer's own lease. */
  readonly ttlMs: number;
}

/** One write of a `TransactWriteItems` (lib-dynamodb's shape: a `Put` or an `Update` with its condition). */
export type TransactionWrite = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

/**
 * A ledger write that commits in the same transaction as the events it is about (e.g. "this
 * subscription's key is deleted" with its `subscription.revoked`), so neither lands without the other.
 * Its condition says the change is still to be made: when it fails, the change was made before (with its
 * events), and the append appends nothing.
 */
export interface OutboxGuard {
  /** The write, given the first sequence number of the events it goes with. */
  readonly write: (fromSeq: number) => TransactionWrite;
  /** Whether the change was made before; asked only when DynamoDB gave no cancellation reasons. */
  readonly madeBefore: () => Promise<boolean>;
}

/** What may go with an append (see {@link Outbox.append}). */
export interface AppendOptions {
  readonly hold?: OutboxHold;
  /** An id the events are appended under at most once, ever (for the outbox's retention). */
  readonly once?: string;
  readonly guard?: OutboxGuard;
}

/**
 * The outbox: every change the control plane must learn about, with a sequence number, so a control
 * plane that was offline replays what it missed (`sync { since }`).
 *
 * Appends are gap-free and in order: each chunk of events is one transaction that moves the counter
 * from the value the appender read to that value plus the chunk's size (a condition on the counter)
 * and writes the chunk's items. Two appenders can never interleave: the one whose condition fails
 * re-reads the counter and tries again. So the stored sequence numbers are always 1..latest (minus
 * expired events): a number is never handed out without its event, and a reader that has seen `n`
 * has seen every event before it. A crashed appender leaves nothing (its transaction never committed).
 */
export class Outbox {
  private readonly now: () => Date;
  /** The counter as this instance's last append left it: the next append's first guess. */
  private lastSeen: number | undefined;
  /**
   * This instance's appends run one after another: concurrent appends in one container (20 unsubscribes
   * at once) would otherwise race each other for the counter, each losing round a wasted transaction and
   * a counter read. Other containers still race, and the condition on the counter keeps that correct.
   */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly table: LedgerTable,
    private readonly options: OutboxOptions,
  ) {
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Appends events in order and returns them with their sequence numbers. With `hold`, the first
   * transaction also writes a hold at the first event's number: a snapshot does not move a client's
   * cursor past held events until {@link releaseHold} (discovery writes the catalog after its events).
   * With `once`, the events are appended at most once under that id, ever (for the outbox's retention):
   * the transaction also writes a marker that must not exist yet, and a repeat (a retried invocation
   * that appended before it died) appends nothing and returns `[]`. With `guard`, its write commits in
   * the events' transaction, and a guard whose condition fails appends nothing and returns `[]` too.
   * `once` and `guard` take events that fit one transaction, and exclude each other.
   */
  append(events: readonly NewEvent[], options: AppendOptions = {}): Promise<OutboxEvent[]> {
    if (events.length === 0) return Promise.resolve([]);
    const appended = this.queue.then(() => this.appendNow(events, options));
    this.queue = appended.catch(() => undefined);
    return appended;
  }

  private async appendNow(events: readonly NewEvent[], options: AppendOptions): Promise<OutboxEvent[]> {
    const createdAt = this.now().toISOString();
    const expiresAt = epochSeconds(this.now()) + this.options.retentionDays * 86_400;
    const chunks = chunk(events);
    if (options.once !== undefined && options.guard !== undefined) {
      throw new Error("outbox: an append takes 'once' or a guard, not both");
    }
    const guard =
      options.once === undefined ? options.guard : this.onceGuard(options.once, createdAt, expiresAt);
    if (guard && chunks.length > 1) {
      throw new Error(`outbox: a guarded append takes one transaction of events (got ${chunks.length})`);
    }
    const stored: OutboxEvent[] = [];
    for (const [index, part] of chunks.entries()) {
      const hold = index === 0 ? options.hold : undefined;
      stored.push(...(await this.appendChunk(part, createdAt, expiresAt, hold, guard)));
    }
    return stored;
  }

  /** `once` as a guard: a marker that must not exist yet, with the first sequence number of the append. */
  private onceGuard(once: string, createdAt: string, expiresAt: number): OutboxGuard {
    return {
      write: (fromSeq) => ({
        Put: {
          TableName: this.table.tableName,
          Item: { ...keys.outboxOnce(once), kind: 'OUTBOX_ONCE', fromSeq, createdAt, expiresAt },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      }),
      madeBefore: async () => (await this.appendedOnceAt(once)) !== undefined,
    };
  }

  /** Removes a hold written by {@link append} (the catalog now holds the events' changes). */
  async releaseHold(id: string): Promise<void> {
    await this.table.client.send(
      new DeleteCommand({ TableName: this.table.tableName, Key: keys.outboxHold(id) }),
    );
  }

  /**
   * The highest sequence number a snapshot may hand out as its cursor: the latest one, or just before
   * the first event of a live hold (a writer whose catalog writes are still to come). Read it before
   * reading the catalog.
   */
  async snapshotCursor(): Promise<number> {
    // The counter first, then the holds: an append that commits in between is after the cursor anyway,
    // and a hold released in between had its catalog writes done before the snapshot reads the catalog.
    const latest = await this.latestSeq();
    const out = await this.table.client.send(
      new QueryCommand({
        TableName: this.table.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': keys.outboxHold('').pk },
        ConsistentRead: true,
      }),
    );
    const nowMs = this.now().getTime();
    let cursor = latest;
    for (const item of out.Items ?? []) {
      if ((item.expiresAtMs as number) <= nowMs) continue;
      cursor = Math.min(cursor, (item.fromSeq as number) - 1);
    }
    return cursor;
  }

  private async appendChunk(
    events: readonly NewEvent[],
    createdAt: string,
    expiresAt: number,
    hold: OutboxHold | undefined,
    guard: OutboxGuard | undefined,
  ): Promise<OutboxEvent[]> {
    for (let attempt = 1; ; attempt++) {
      // The counter this instance last moved is the first guess (a container that appended last needs
      // no read); a wrong guess only costs the failed transaction, then the counter is read.
      const guessed = this.lastSeen !== undefined;
      const last = this.lastSeen ?? (await this.latestSeq());
      this.lastSeen = undefined;
      const stored = events.map((e, i) => ({
        seq: last + 1 + i,
        event: e.event,
        payload: e.payload,
        createdAt,
      }));
      const holdItem = hold
        ? {
            Put: {
              TableName: this.table.tableName,
              Item: {
                ...keys.outboxHold(hold.id),
                kind: 'OUTBOX_HOLD',
                fromSeq: last + 1,
                expiresAtMs: this.now().getTime() + hold.ttlMs,
                expiresAt: epochSeconds(this.now()) + Math.ceil(hold.ttlMs / 1000) + 1,
              },
            },
          }
        : undefined;
      try {
        await this.table.client.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Update: {
                  TableName: this.table.tableName,
                  Key: keys.eventSequence(),
                  UpdateExpression: 'SET #last = :next',
                  ConditionExpression:
                    last === 0 ? 'attribute_not_exists(#last) OR #last = :last' : '#last = :last',
                  ExpressionAttributeNames: { '#last': 'last' },
                  ExpressionAttributeValues: { ':next': last + events.length, ':last': last },
                },
              },
              ...stored.map((e) => ({
                Put: {
                  TableName: this.table.tableName,
                  Item: { ...keys.event(e.seq), kind: 'EVENT', ...e, expiresAt },
                },
              })),
              ...(holdItem ? [holdItem] : []),
              // Last: its index in the cancellation reasons tells a change made before.
              ...(guard ? [guard.write(last + 1)] : []),
            ],
          }),
        );
        this.lastSeen = last + events.length;
        return stored;
      } catch (error) {
        if (guard && (await guardFailed(error, guard))) return [];
        if (!isCounterRace(error) || attempt >= APPEND_ATTEMPTS_MAX) throw error;
        if (guessed) continue;
        // Another appender took these numbers: read the counter again after a short random pause.
        await sleep(Math.floor(Math.random() * Math.min(200, 5 * 2 ** Math.min(attempt, 6))));
      }
    }
  }

  /** The first sequence number of the append made `once` under this id, if it was made. */
  async appendedOnceAt(once: string): Promise<number | undefined> {
    const out = await this.table.client.send(
      new GetCommand({ TableName: this.table.tableName, Key: keys.outboxOnce(once), ConsistentRead: true }),
    );
    return out.Item?.fromSeq as number | undefined;
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
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Splits events into transactions: at most {@link TRANSACTION_EVENTS_MAX} and about 2 MB each. */
function chunk(events: readonly NewEvent[]): NewEvent[][] {
  const chunks: NewEvent[][] = [];
  let current: NewEvent[] = [];
  let bytes = 0;
  for (const event of events) {
    const size = JSON.stringify(event.payload ?? null).length + 200;
    if (
      current.length > 0 &&
      (current.length >= TRANSACTION_EVENTS_MAX || bytes + size > TRANSACTION_BYTES_MAX)
    ) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(event);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Whether a cancelled transaction failed on the guard's condition (the guard's change was made before). */
async function guardFailed(error: unknown, guard: OutboxGuard): Promise<boolean> {
  const e = error as { name?: string; CancellationReasons?: { Code?: string }[] } | undefined;
  if (e?.name !== 'TransactionCanceledException') return false;
  const reasons = e.CancellationReasons ?? [];
  if (reasons.length > 0) return reasons.at(-1)?.Code === 'ConditionalCheckFailed';
  return guard.madeBefore();
}

/** The transaction was cancelled because the counter moved (another appender won the race). */
function isCounterRace(error: unknown): boolean {
  const e = error as { name?: string; CancellationReasons?: { Code?: string }[] } | undefined;
  if (e?.name !== 'TransactionCanceledException') return false;
  const reasons = e.CancellationReasons ?? [];
  return (
    reasons.length === 0 ||
    reasons.some((r) => r.Code === 'ConditionalCheckFailed' || r.Code === 'TransactionConflict')
  );
}
