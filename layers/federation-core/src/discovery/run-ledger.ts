/**
 * The ledger of a fanned-out run, all in the run's partition (`RUN#<runId>`):
 *
 * - `RUN` — the run record: what the coordinator knows (sources, units total, deadline, `replyTo`) and
 *   the counters every unit adds to when it ends (units done, counts, API calls by operation, throttles,
 *   events, invocations, statuses), in one transaction with the unit's own record, so a unit is counted
 *   once. Constant size whatever the number of units (DynamoDB's 400 KB item limit).
 * - `UNIT#<source>#<account>#<region>` — one per account-region: its claim (which invocation works on
 *   it, which continuation is current), its checkpoint's address and, once ended, its summary and errors
 *   (bounded like a run summary's: the first in full, all counted by code).
 * - `CKPT#<unit>#<continuation>#<part>` — a unit's checkpoint, gzip'ed JSON cut into parts.
 *
 * Unit and checkpoint items expire (TTL) after `retentionDays`; the run record stays, like any `RUN#`.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  BatchWriteCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  paginateQuery,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ErrorCode, FederationError } from '../errors.js';
import { epochSeconds, isConditionFailed, keys, type LedgerTable } from '../ledger/table.js';
import type { UnitSpec } from './organization.js';
import {
  type AccountRegionSummary,
  type BoundedErrors,
  boundErrors,
  type DiscoveryCounts,
  type DiscoveryError,
} from './summary.js';

/** Bytes of gzip data per checkpoint part (room for keys under the 400 KB item limit). */
const CHECKPOINT_PART_BYTES = 350 * 1024;
const BATCH_WRITE_MAX = 25;

export const RunStatus = { RUNNING: 'running', COMPLETED: 'completed' } as const;
export type RunStatus = (typeof RunStatus)[keyof typeof RunStatus];

/** Where the run answers a relay `discover` when it completes. */
export interface ReplyTo {
  readonly connectionId: string;
  readonly commandId: string;
}

/** The run record of a fanned-out run. */
export interface FanOutRunRecord {
  readonly runId: string;
  readonly status: RunStatus;
  readonly startedAt: string;
  readonly startedAtMs: number;
  readonly deadlineAtMs: number;
  readonly full: boolean;
  readonly sources: readonly string[];
  readonly unitsTotal: number;
  readonly unitsDone: number;
  readonly counts: DiscoveryCounts;
  readonly apiCalls: Record<string, number>;
  readonly throttles: number;
  /** Events the units appended (before `discovery.completed`). */
  readonly events: number;
  /** Unit invocations (continuations included). */
  readonly invocations: number;
  /** Units ended, by status. */
  readonly unitStatus: Record<string, number>;
  /** Any unit partial or failed. */
  readonly partial: boolean;
  /** Accounts listed in the run's organisation scopes (those without the role: the UNIT# items). */
  readonly organizationAccounts?: number;
  readonly replyTo?: ReplyTo;
  readonly finishedAt?: string;
  readonly durationMs?: number;
  /** Completed by its deadline rather than by its last unit. */
  readonly deadlineReached?: boolean;
  /** Sequence of its `discovery.completed`, once appended. */
  readonly completedSeq?: number;
}

/** A unit's outcome once it ended. */
export interface UnitOutcome {
  readonly summary: AccountRegionSummary;
  /** Every error of the unit; its UNIT# item keeps them bounded ({@link StoredUnitOutcome}). */
  readonly errors: readonly DiscoveryError[];
  /** Events it appended. */
  readonly events: number;
  readonly invocations: number;
  /**
   * The unit's account lacks the organisation scope's role: kept in the UNIT# item only, where the
   * run's summary finds it (the RUN# record does not gather the accounts: it stays constant in size).
   */
  readonly withoutRole?: boolean;
}

/**
 * A unit's outcome as its UNIT# item holds it: the errors bounded like a run summary's (the first in
 * full, all counted by code), so that an account-region with thousands of failed calls still ends under
 * DynamoDB's 400 KB item limit. Items written before the bound have no counts: all their errors are listed.
 */
export type StoredUnitOutcome = Omit<UnitOutcome, 'errors'> &
  Pick<BoundedErrors, 'errors'> &
  Partial<Omit<BoundedErrors, 'errors'>>;

/** The bounded errors of a stored outcome (counted from the list for items written before the bound). */
export function outcomeErrors(outcome: StoredUnitOutcome): BoundedErrors {
  return outcome.errorCount !== undefined && outcome.errorsByCode !== undefined
    ? { errors: outcome.errors, errorCount: outcome.errorCount, errorsByCode: outcome.errorsByCode }
    : boundErrors(outcome.errors);
}

export interface UnitRecord {
  readonly spec: UnitSpec;
  /** The continuation whose message is current (0 for the coordinator's). */
  readonly cont: number;
  readonly claim?: string;
  readonly claimUntilMs?: number;
  /** Parts of the current checkpoint (absent before the first). */
  readonly checkpointParts?: number;
  readonly invocations: number;
  readonly ended?: boolean;
  readonly outcome?: StoredUnitOutcome;
}

export interface RunLedgerOptions {
  readonly retentionDays?: number;
  readonly now?: () => Date;
}

type Item = Record<string, unknown>;

function stripKeys(item: Item): Item {
  const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g2, kind: _k, expiresAt: _e, ...rest } = item;
  return rest;
}

export class FanOutRunLedger {
  private readonly now: () => Date;
  private readonly retentionDays: number;

  constructor(
    private readonly table: LedgerTable,
    options: RunLedgerOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.retentionDays = options.retentionDays ?? 7;
  }

  private expiresAt(): number {
    return epochSeconds(this.now()) + this.retentionDays * 86_400;
  }

  /** The run record and one unit record per account-region (units first: a unit never lacks its record). */
  async createRun(
    record: Omit<
      FanOutRunRecord,
      | 'status'
      | 'unitsDone'
      | 'counts'
      | 'apiCalls'
      | 'throttles'
      | 'events'
      | 'invocations'
      | 'unitStatus'
      | 'partial'
    > & { readonly counts: DiscoveryCounts },
    units: readonly UnitSpec[],
  ): Promise<void> {
    const expiresAt = this.expiresAt();
    for (let i = 0; i < units.length; i += BATCH_WRITE_MAX) {
      let requests = units.slice(i, i + BATCH_WRITE_MAX).map((spec) => ({
        PutRequest: {
          Item: {
            ...keys.runUnit(record.runId, spec.key),
            kind: 'RUNUNIT',
            spec,
            cont: 0,
            invocations: 0,
            expiresAt,
          },
        },
      }));
      for (let attempt = 0; requests.length > 0; attempt++) {
        const out = await this.table.client.send(
          new BatchWriteCommand({ RequestItems: { [this.table.tableName]: requests } }),
        );
        requests = (out.UnprocessedItems?.[this.table.tableName] ?? []) as typeof requests;
        if (requests.length > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 25 * 2 ** attempt)));
      }
    }
    await this.table.client.send(
      new PutCommand({
        TableName: this.table.tableName,
        Item: {
          ...record,
          ...keys.run(record.runId),
          ...keys.runIndex(record.startedAt, record.runId),
          kind: 'RUN',
          fanOut: true,
          status: RunStatus.RUNNING,
          unitsDone: 0,
          apiCalls: {},
          throttles: 0,
          events: 0,
          invocations: 0,
          unitStatus: {},
          partial: false,
          accountRegions: [],
          errors: [],
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async getRun(runId: string): Promise<FanOutRunRecord | undefined> {
    const out = await this.table.client.send(
      new GetCommand({ TableName: this.table.tableName, Key: keys.run(runId), ConsistentRead: true }),
    );
    const item = out.Item;
    if (item?.fanOut !== true) return undefined;
    return fromRunItem(item);
  }

  async getUnit(runId: string, unitKey: string): Promise<UnitRecord | undefined> {
    const out = await this.table.client.send(
      new GetCommand({
        TableName: this.table.tableName,
        Key: keys.runUnit(runId, unitKey),
        ConsistentRead: true,
      }),
    );
    return out.Item ? (stripKeys(out.Item) as unknown as UnitRecord) : undefined;
  }

  /** Every unit record of a run, in key order. */
  async listUnits(runId: string): Promise<UnitRecord[]> {
    const units: UnitRecord[] = [];
    const pages = paginateQuery(
      { client: this.table.client },
      {
        TableName: this.table.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :unit)',
        ExpressionAttributeValues: { ':pk': keys.run(runId).pk, ':unit': 'UNIT#' },
        ConsistentRead: true,
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) units.push(stripKeys(item) as unknown as UnitRecord);
    }
    return units;
  }

  /**
   * Claims a unit for one invocation: only the message of the current continuation, only when no other
   * invocation holds a live claim and the unit has not ended. False when the message is stale or a
   * duplicate (the caller drops it).
   */
  async claim(runId: string, unitKey: string, cont: number, invocation: string, untilMs: number) {
    try {
      await this.table.client.send(
        new UpdateCommand({
          TableName: this.table.tableName,
          Key: keys.runUnit(runId, unitKey),
          UpdateExpression: 'SET #claim = :inv, claimUntilMs = :until ADD invocations :one',
          ConditionExpression:
            'attribute_exists(pk) AND cont = :cont AND attribute_not_exists(ended) AND ' +
            '(attribute_not_exists(#claim) OR claimUntilMs < :now)',
          ExpressionAttributeNames: { '#claim': 'claim' },
          ExpressionAttributeValues: {
            ':inv': invocation,
            ':until': untilMs,
            ':cont': cont,
            ':now': this.now().getTime(),
            ':one': 1,
          },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      throw error;
    }
  }

  /** The checkpoint of a unit's continuation `cont`, or undefined before the first. */
  async loadCheckpoint<T>(runId: string, unit: UnitRecord): Promise<T | undefined> {
    if (!unit.checkpointParts) return undefined;
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < unit.checkpointParts; i++) {
      const out = await this.table.client.send(
        new GetCommand({
          TableName: this.table.tableName,
          Key: keys.runCheckpointPart(runId, `${unit.spec.key}#${unit.cont}`, i),
          ConsistentRead: true,
        }),
      );
      if (!out.Item) {
        throw new FederationError(
          ErrorCode.INTERNAL,
          `checkpoint ${runId}/${unit.spec.key}#${unit.cont}: part ${i} of ${unit.checkpointParts} missing`,
        );
      }
      chunks.push(out.Item.data as Uint8Array);
    }
    return JSON.parse(gunzipSync(Buffer.concat(chunks)).toString('utf8')) as T;
  }

  /**
   * Hands the unit on to continuation `cont + 1`: its checkpoint is written under the new continuation
   * (the current one stays readable until the unit record points to the new one), then the record moves
   * on and the claim is given up — conditional on still holding it. False when the claim was lost.
   */
  async handOn(
    runId: string,
    unitKey: string,
    cont: number,
    invocation: string,
    state: unknown,
  ): Promise<boolean> {
    const gz = gzipSync(Buffer.from(JSON.stringify(state), 'utf8'));
    const parts = Math.max(1, Math.ceil(gz.length / CHECKPOINT_PART_BYTES));
    const expiresAt = this.expiresAt();
    for (let i = 0; i < parts; i++) {
      await this.table.client.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: {
            ...keys.runCheckpointPart(runId, `${unitKey}#${cont + 1}`, i),
            kind: 'RUNCKPT',
            data: gz.subarray(i * CHECKPOINT_PART_BYTES, (i + 1) * CHECKPOINT_PART_BYTES),
            expiresAt,
          },
        }),
      );
    }
    try {
      await this.table.client.send(
        new UpdateCommand({
          TableName: this.table.tableName,
          Key: keys.runUnit(runId, unitKey),
          UpdateExpression: 'SET cont = :next, checkpointParts = :parts REMOVE #claim, claimUntilMs',
          ConditionExpression: '#claim = :inv AND cont = :cont',
          ExpressionAttributeNames: { '#claim': 'claim' },
          ExpressionAttributeValues: {
            ':next': cont + 1,
            ':parts': parts,
            ':inv': invocation,
            ':cont': cont,
          },
        }),
      );
    } catch (error) {
      if (isConditionFailed(error)) return false;
      throw error;
    }
    return true;
  }

  /** Undoes a hand-on whose continuation message could not be sent: the current message goes on. */
  async undoHandOn(runId: string, unitKey: string, cont: number): Promise<void> {
    await this.table.client
      .send(
        new UpdateCommand({
          TableName: this.table.tableName,
          Key: keys.runUnit(runId, unitKey),
          UpdateExpression: 'SET cont = :cont',
          ConditionExpression: 'cont = :next AND attribute_not_exists(#claim)',
          ExpressionAttributeNames: { '#claim': 'claim' },
          ExpressionAttributeValues: { ':cont': cont, ':next': cont + 1 },
        }),
      )
      .catch((error: unknown) => {
        if (!isConditionFailed(error)) throw error;
      });
  }

  /** Gives a claim up without handing on (the message is delivered again by SQS). */
  async release(runId: string, unitKey: string, invocation: string): Promise<void> {
    await this.table.client
      .send(
        new UpdateCommand({
          TableName: this.table.tableName,
          Key: keys.runUnit(runId, unitKey),
          UpdateExpression: 'REMOVE #claim, claimUntilMs',
          ConditionExpression: '#claim = :inv',
          ExpressionAttributeNames: { '#claim': 'claim' },
          ExpressionAttributeValues: { ':inv': invocation },
        }),
      )
      .catch((error: unknown) => {
        if (!isConditionFailed(error)) throw error;
      });
  }

  /**
   * Ends a unit and adds its outcome to the run's counters, in one transaction: a unit is counted once.
   * With `invocation`, only while it holds the claim; without (a unit failed for good), only if it has
   * not ended. False when the condition did not hold (someone else ended it).
   */
  async endUnit(runId: string, unitKey: string, outcome: UnitOutcome, invocation?: string): Promise<boolean> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':one': 1, ':zero': 0 };
    const sets: string[] = [];
    Object.entries(outcome.summary.counts).forEach(([k, v], i) => {
      names[`#c${i}`] = k;
      values[`:c${i}`] = v;
      sets.push(`counts.#c${i} = if_not_exists(counts.#c${i}, :zero) + :c${i}`);
    });
    Object.entries(outcome.summary.apiCalls).forEach(([op, n], i) => {
      names[`#o${i}`] = op;
      values[`:o${i}`] = n;
      sets.push(`apiCalls.#o${i} = if_not_exists(apiCalls.#o${i}, :zero) + :o${i}`);
    });
    names['#st'] = outcome.summary.status;
    sets.push('unitStatus.#st = if_not_exists(unitStatus.#st, :zero) + :one');
    const partial = outcome.summary.status === 'partial' || outcome.summary.status === 'failed';
    if (partial) {
      // PARTIAL is a reserved word of DynamoDB's expressions.
      names['#partial'] = 'partial';
      sets.push('#partial = :true');
      values[':true'] = true;
    }
    const add = 'ADD unitsDone :one, throttles :th, events :ev, invocations :inv';
    values[':th'] = outcome.summary.throttles;
    values[':ev'] = outcome.events;
    values[':inv'] = outcome.invocations;
    const unitKeyOf = keys.runUnit(runId, unitKey);
    try {
      await this.table.client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.table.tableName,
                Key: unitKeyOf,
                UpdateExpression: 'SET ended = :true2, outcome = :outcome REMOVE #claim, claimUntilMs',
                ConditionExpression: invocation
                  ? '#claim = :inv AND attribute_not_exists(ended)'
                  : 'attribute_exists(pk) AND attribute_not_exists(ended)',
                ExpressionAttributeNames: { '#claim': 'claim' },
                ExpressionAttributeValues: {
                  ':true2': true,
                  ':outcome': { ...outcome, ...boundErrors(outcome.errors) } satisfies StoredUnitOutcome,
                  ...(invocation ? { ':inv': invocation } : {}),
                },
              },
            },
            {
              Update: {
                TableName: this.table.tableName,
                Key: keys.run(runId),
                UpdateExpression: `SET ${sets.join(', ')} ${add}`,
                ConditionExpression: 'attribute_exists(pk)',
                ExpressionAttributeNames: names,
                ExpressionAttributeValues: values,
              },
            },
          ],
        }),
      );
      return true;
    } catch (error) {
      if ((error as { name?: string }).name === 'TransactionCanceledException') return false;
      throw error;
    }
  }

  /** Deletes a unit's checkpoint parts of continuations up to `cont` (best effort; they expire anyway). */
  async deleteCheckpoints(runId: string, unit: UnitRecord): Promise<void> {
    if (!unit.checkpointParts) return;
    for (let i = 0; i < unit.checkpointParts; i++) {
      await this.table.client
        .send(
          new DeleteCommand({
            TableName: this.table.tableName,
            Key: keys.runCheckpointPart(runId, `${unit.spec.key}#${unit.cont}`, i),
          }),
        )
        .catch(() => undefined);
    }
  }

  /**
   * Completes the run once: by its last unit (`lastUnit`: only when every unit has ended) or by its
   * deadline. The conditional write decides who completes it; undefined for everyone else.
   */
  async complete(
    run: FanOutRunRecord,
    reason: 'lastUnit' | 'deadline',
  ): Promise<FanOutRunRecord | undefined> {
    const now = this.now();
    try {
      const out = await this.table.client.send(
        new UpdateCommand({
          TableName: this.table.tableName,
          Key: keys.run(run.runId),
          UpdateExpression:
            'SET #status = :completed, finishedAt = :at, durationMs = :d, deadlineReached = :dl',
          ConditionExpression:
            reason === 'lastUnit'
              ? '#status = :running AND unitsDone >= unitsTotal'
              : '#status = :running AND deadlineAtMs <= :nowMs',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':completed': RunStatus.COMPLETED,
            ':running': RunStatus.RUNNING,
            ':at': now.toISOString(),
            ':d': Math.max(0, now.getTime() - run.startedAtMs),
            ':dl': reason === 'deadline',
            ...(reason === 'deadline' ? { ':nowMs': now.getTime() } : {}),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return fromRunItem(out.Attributes as Item);
    } catch (error) {
      if (isConditionFailed(error)) return undefined;
      throw error;
    }
  }

  async setCompletedSeq(runId: string, seq: number): Promise<void> {
    await this.table.client.send(
      new UpdateCommand({
        TableName: this.table.tableName,
        Key: keys.run(runId),
        UpdateExpression: 'SET completedSeq = :seq',
        ExpressionAttributeValues: { ':seq': seq },
      }),
    );
  }
}

function fromRunItem(item: Item): FanOutRunRecord {
  // `withoutRole`: the string set of accounts without the role that records of runs started before the
  // bound gathered (their UNIT# items say the same); not part of the record any more.
  const { withoutRole: _legacy, ...rest } = stripKeys(item);
  return rest as unknown as FanOutRunRecord;
}
