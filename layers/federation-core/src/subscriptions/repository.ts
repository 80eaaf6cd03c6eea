/**
 * The ledger's subscription records (`SUB#<subscriptionId>`): the record type and the repository whose
 * conditional writes move a subscription through its states, including the lost-key sweeper's writes.
 */
import {
  GetCommand,
  PutCommand,
  paginateQuery,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { OutboxGuard } from '../ledger/outbox.js';
import { isConditionFailed, keys, LEDGER_KEYS, type LedgerTable } from '../ledger/table.js';
import { SubscriptionStatus } from '../model.js';

/** How the key value of a subscription is obtained. */
export const KeyMode = {
  /** HMAC of the subscription id under the agent's secret: re-derivable, so a repeat returns it again. */
  DERIVED: 'derived',
  /** Supplied by the caller in `apiKey`: never stored, only its keyed fingerprint is (inside `requestHash`). */
  CUSTOM: 'custom',
} as const;
export type KeyMode = (typeof KeyMode)[keyof typeof KeyMode];

/** Why a subscription was revoked. */
export const RevokeReason = {
  UNSUBSCRIBED: 'UNSUBSCRIBED',
  PLAN_REMOVED: 'PLAN_REMOVED',
} as const;
export type RevokeReason = (typeof RevokeReason)[keyof typeof RevokeReason];

/**
 * One subscription as the ledger records it (`SUB#<subscriptionId>`). Never holds the key value:
 * a derived value is recomputed from `subscriptionId`, `keyGeneration` and the secret version
 * `secretVersionId`; a custom value only ever exists in the caller's request.
 */
export interface SubscriptionRecord {
  readonly subscriptionId: string;
  /** Catalog ids. */
  readonly apiId: string;
  readonly planId: string;
  /** Where the key lives: the usage plan and the account-region (and role) it belongs to. */
  readonly usagePlanId: string;
  readonly accountId: string;
  readonly region: string;
  readonly roleArn?: string;
  readonly application: { readonly id: string; readonly name: string };
  readonly status: SubscriptionStatus;
  /** Set once `CreateApiKey` answered. Kept after revocation, so the ledger always knows its keys. */
  readonly apiKeyId?: string;
  readonly keyMode: KeyMode;
  /**
   * Derived keys: input of the derivation next to the subscription id. Bumped when `CreateApiKey`
   * reports the value taken (a previous attempt created the key but its id was lost).
   */
  readonly keyGeneration: number;
  /** Generations whose key was (probably) created but whose id is unknown: keys on no usage plan. */
  readonly lostKeyGenerations?: readonly number[];
  /** Secrets Manager version of the HMAC secret used for the request hash and the derived value. */
  readonly secretVersionId: string;
  /** Keyed digest of the canonical request: a repeat with another digest is a conflicting request. */
  readonly requestHash: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly activatedAt?: string;
  readonly revokedAt?: string;
  readonly revokeReason?: RevokeReason;
  /** REVOKED records: true once `DeleteApiKey` succeeded (or found the key gone). */
  readonly keyDeleted?: boolean;
  /** When `keyDeleted` became true (ISO 8601). */
  readonly keyDeletedAt?: string;
  /** FAILED records: the typed error that ended the attempt. */
  readonly failure?: { readonly code: string; readonly message: string };
  /** Attempts that took the lease (1 for a subscription that went through at once). */
  readonly attempt: number;
  /** The in-flight attempt: its random token and when its lease ends (epoch ms). */
  readonly leaseOwner?: string;
  readonly leaseExpiresAt?: number;
  /** Set by the lost-key sweeper: when it last swept this subscription's keys. */
  readonly sweptAt?: string;
  /** Keys the lost-key sweeper deleted for this subscription, over all its sweeps. */
  readonly sweptKeys?: number;
}

/** Fields of a new PENDING record. */
export type NewSubscription = Omit<
  SubscriptionRecord,
  | 'status'
  | 'apiKeyId'
  | 'createdAt'
  | 'updatedAt'
  | 'activatedAt'
  | 'revokedAt'
  | 'revokeReason'
  | 'keyDeleted'
  | 'keyDeletedAt'
  | 'failure'
  | 'attempt'
  | 'leaseOwner'
  | 'leaseExpiresAt'
  | 'keyGeneration'
  | 'lostKeyGenerations'
  | 'sweptAt'
  | 'sweptKeys'
>;

/** A lease on one subscription: the token that owns it and its end (epoch ms). */
export interface SubscriptionLease {
  readonly owner: string;
  readonly expiresAt: number;
}

export interface SubscriptionRepositoryOptions {
  readonly now?: () => Date;
}

const INTERNAL_FIELDS = ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk', 'kind'] as const;

function toRecord(item: Record<string, unknown>): SubscriptionRecord {
  const copy: Record<string, unknown> = { ...item };
  for (const field of INTERNAL_FIELDS) delete copy[field];
  return copy as unknown as SubscriptionRecord;
}

/** The sparse gsi2 entry of a REVOKED record whose key is still to be deleted (see `keys.keyToDelete`). */
const KEY_TO_DELETE_FIELDS = [LEDGER_KEYS.gsi2.partitionKey, LEDGER_KEYS.gsi2.sortKey];

/** A record the lost-key sweeper should look at (see {@link SubscriptionRepository.listSweepCandidates}). */
function isSweepCandidate(record: SubscriptionRecord): boolean {
  if (record.sweptAt !== undefined && record.sweptAt >= record.updatedAt) return false;
  if ((record.lostKeyGenerations?.length ?? 0) > 0) return true;
  if (record.status === SubscriptionStatus.FAILED || record.status === SubscriptionStatus.PENDING)
    return true;
  return record.status === SubscriptionStatus.REVOKED && record.keyDeleted !== true;
}

/**
 * `SUB#` records. Every state change is one conditional write naming the state it expects, so two
 * writers can never both win: a method returns `undefined` (or false) when its condition did not
 * hold, and the caller re-reads and decides. The lease (`leaseOwner`, `leaseExpiresAt`) is the
 * idempotency lock of a subscribe in flight, Powertools style: taken by the conditional create or,
 * when the previous holder is past its expiry, by a conditional take-over.
 */
export class SubscriptionRepository {
  private readonly now: () => Date;

  constructor(
    private readonly table: LedgerTable,
    options: SubscriptionRepositoryOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
  }

  async get(subscriptionId: string): Promise<SubscriptionRecord | undefined> {
    const out = await this.table.client.send(
      new GetCommand({
        TableName: this.table.tableName,
        Key: keys.subscription(subscriptionId),
        ConsistentRead: true,
      }),
    );
    return out.Item ? toRecord(out.Item) : undefined;
  }

  /**
   * Creates the record in PENDING with the lease held by `lease.owner`, only if no record with this
   * id exists. Returns the record, or undefined when one already exists.
   */
  async createPending(
    input: NewSubscription,
    lease: SubscriptionLease,
  ): Promise<SubscriptionRecord | undefined> {
    const at = this.now().toISOString();
    const record: SubscriptionRecord = {
      ...input,
      status: SubscriptionStatus.PENDING,
      keyGeneration: 0,
      createdAt: at,
      updatedAt: at,
      attempt: 1,
      leaseOwner: lease.owner,
      leaseExpiresAt: lease.expiresAt,
    };
    try {
      await this.table.client.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: {
            ...record,
            ...keys.subscription(input.subscriptionId),
            ...keys.subscriptionIndex(input.accountId, input.region, input.usagePlanId, input.subscriptionId),
            kind: 'SUB',
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return record;
    } catch (error) {
      if (isConditionFailed(error)) return undefined;
      throw error;
    }
  }

  /**
   * Takes the lease of a PENDING or FAILED record whose lease is free (released or past its expiry)
   * and whose request hash is `requestHash`. A FAILED record goes back to PENDING (a new attempt).
   * Returns the updated record, or undefined when the lease is held or the state moved on.
   */
  async acquire(
    subscriptionId: string,
    requestHash: string,
    lease: SubscriptionLease,
  ): Promise<SubscriptionRecord | undefined> {
    return this.update(subscriptionId, {
      set: {
        status: SubscriptionStatus.PENDING,
        leaseOwner: lease.owner,
        leaseExpiresAt: lease.expiresAt,
      },
      add: { attempt: 1 },
      remove: ['failure'],
      condition:
        '#status IN (:pending, :failed) AND requestHash = :hash AND ' +
        '(attribute_not_exists(leaseExpiresAt) OR leaseExpiresAt < :nowMs)',
      values: {
        ':pending': SubscriptionStatus.PENDING,
        ':failed': SubscriptionStatus.FAILED,
        ':hash': requestHash,
        ':nowMs': this.now().getTime(),
      },
    });
  }

  /**
   * Gives the lease back without changing the state, so the next attempt need not wait for expiry.
   * `touch: false` leaves `updatedAt` as it is (the sweeper's lease is no change of the subscription).
   */
  async release(subscriptionId: string, owner: string, options: { touch?: boolean } = {}): Promise<boolean> {
    const out = await this.update(subscriptionId, {
      set: {},
      remove: ['leaseOwner', 'leaseExpiresAt'],
      condition: 'leaseOwner = :owner',
      values: { ':owner': owner },
      touch: options.touch,
    });
    return out !== undefined;
  }

  /**
   * PENDING → PENDING with `apiKeyId`: `CreateApiKey` answered. Only the lease owner, only once.
   */
  recordKeyId(
    subscriptionId: string,
    owner: string,
    apiKeyId: string,
  ): Promise<SubscriptionRecord | undefined> {
    return this.update(subscriptionId, {
      set: { apiKeyId },
      condition: '#status = :pending AND leaseOwner = :owner AND attribute_not_exists(apiKeyId)',
      values: { ':pending': SubscriptionStatus.PENDING, ':owner': owner },
    });
  }

  /**
   * PENDING (no key id) → PENDING with the next key generation: `CreateApiKey` said the value of
   * `lostGeneration` is taken, i.e. an earlier attempt created that key and its id was lost.
   */
  bumpKeyGeneration(
    subscriptionId: string,
    owner: string,
    lostGeneration: number,
  ): Promise<SubscriptionRecord | undefined> {
    return this.update(subscriptionId, {
      set: { keyGeneration: lostGeneration + 1 },
      append: { lostKeyGenerations: [lostGeneration] },
      condition:
        '#status = :pending AND leaseOwner = :owner AND keyGeneration = :gen AND attribute_not_exists(apiKeyId)',
      values: { ':pending': SubscriptionStatus.PENDING, ':owner': owner, ':gen': lostGeneration },
    });
  }

  /** PENDING with `apiKeyId` → ACTIVE: the key is on its usage plan. Releases the lease. */
  activate(subscriptionId: string, owner: string, apiKeyId: string): Promise<SubscriptionRecord | undefined> {
    return this.update(subscriptionId, {
      set: { status: SubscriptionStatus.ACTIVE, activatedAt: this.now().toISOString() },
      remove: ['leaseOwner', 'leaseExpiresAt'],
      condition: '#status = :pending AND leaseOwner = :owner AND apiKeyId = :keyId',
      values: { ':pending': SubscriptionStatus.PENDING, ':owner': owner, ':keyId': apiKeyId },
    });
  }

  /**
   * PENDING → FAILED with the error that ended the attempt (after compensation). Releases the lease.
   * `apiKeyId` is cleared only when `keyDeleted` says its key is gone.
   */
  fail(
    subscriptionId: string,
    owner: string,
    failure: { code: string; message: string },
    options: { keyDeleted: boolean },
  ): Promise<SubscriptionRecord | undefined> {
    return this.update(subscriptionId, {
      set: { status: SubscriptionStatus.FAILED, failure },
      remove: ['leaseOwner', 'leaseExpiresAt', ...(options.keyDeleted ? ['apiKeyId'] : [])],
      condition: '#status = :pending AND leaseOwner = :owner',
      values: { ':pending': SubscriptionStatus.PENDING, ':owner': owner },
    });
  }

  /**
   * Any of `from` → REVOKED with `reason`, only when no live lease is held (a subscribe in flight is
   * not pulled from under its owner), unless `force` (plan removal: the usage plan is gone anyway).
   * `keyDeleted` false means the key (if any) still has to be deleted; see {@link keyDeletedGuard}.
   */
  revoke(
    subscriptionId: string,
    from: readonly SubscriptionStatus[],
    reason: RevokeReason,
    options: { force?: boolean } = {},
  ): Promise<SubscriptionRecord | undefined> {
    const names = from.map((_, i) => `:from${i}`);
    const values: Record<string, unknown> = Object.fromEntries(from.map((s, i) => [`:from${i}`, s]));
    let condition = `#status IN (${names.join(', ')})`;
    if (!options.force) {
      condition += ' AND (attribute_not_exists(leaseExpiresAt) OR leaseExpiresAt < :nowMs)';
      values[':nowMs'] = this.now().getTime();
    }
    const revokedAt = this.now().toISOString();
    return this.update(subscriptionId, {
      set: {
        status: SubscriptionStatus.REVOKED,
        revokedAt,
        revokeReason: reason,
        keyDeleted: false,
        ...keys.keyToDelete(revokedAt, subscriptionId),
      },
      remove: ['leaseOwner', 'leaseExpiresAt'],
      condition,
      values,
    });
  }

  /**
   * "The key of this REVOKED subscription is deleted" as an outbox guard: it commits with the
   * subscription's `subscription.revoked` event in one transaction, and a record already marked (by a
   * concurrent or earlier call, with its event) makes the append append nothing.
   */
  keyDeletedGuard(subscriptionId: string, at: string): OutboxGuard {
    return {
      write: () => ({
        Update: this.updateInput(subscriptionId, {
          set: { keyDeleted: true, keyDeletedAt: at },
          remove: KEY_TO_DELETE_FIELDS,
          condition: '#status = :revoked AND (attribute_not_exists(keyDeleted) OR keyDeleted = :false)',
          values: { ':revoked': SubscriptionStatus.REVOKED, ':false': false },
        }),
      }),
      madeBefore: async () => (await this.get(subscriptionId))?.keyDeleted === true,
    };
  }

  /**
   * REVOKED subscriptions whose key is still to be deleted and that were revoked before `before` (ISO
   * 8601), oldest first, at most `limit` (through the sparse gsi2, eventually consistent: the caller
   * reads each record before acting on it).
   */
  async listKeysToDelete(
    before: string,
    limit: number,
  ): Promise<{ subscriptionIds: string[]; more: boolean }> {
    const out = await this.table.client.send(
      new QueryCommand({
        TableName: this.table.tableName,
        IndexName: LEDGER_KEYS.gsi2.name,
        KeyConditionExpression: '#pk = :pk AND #sk < :before',
        ExpressionAttributeNames: { '#pk': LEDGER_KEYS.gsi2.partitionKey, '#sk': LEDGER_KEYS.gsi2.sortKey },
        ExpressionAttributeValues: { ':pk': keys.keyToDelete('', '').gsi2pk, ':before': before },
        Limit: limit,
      }),
    );
    const subscriptionIds = (out.Items ?? []).map((item) => String(item.pk).slice('SUB#'.length));
    return { subscriptionIds, more: out.LastEvaluatedKey !== undefined };
  }

  /** Every subscription on one usage plan of one account-region (for plan removal), any status. */
  async listByUsagePlan(
    accountId: string,
    region: string,
    usagePlanId: string,
  ): Promise<SubscriptionRecord[]> {
    const { gsi1pk } = keys.subscriptionIndex(accountId, region, usagePlanId, '');
    const records: SubscriptionRecord[] = [];
    const pages = paginateQuery(
      { client: this.table.client },
      {
        TableName: this.table.tableName,
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :pk',
        ExpressionAttributeValues: { ':pk': gsi1pk },
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) records.push(toRecord(item));
    }
    return records;
  }

  /**
   * Every subscription on these usage plans of one account-region, read consistently: a Scan of the
   * base table (the usage-plan index, a GSI, cannot be read consistently, so a record written a moment
   * ago may be missing from {@link listByUsagePlan}). Reads the whole table: for plan removals only,
   * which are rare, and at most once per account-region run.
   */
  async listByUsagePlansConsistent(
    accountId: string,
    region: string,
    usagePlanIds: readonly string[],
  ): Promise<SubscriptionRecord[]> {
    if (usagePlanIds.length === 0) return [];
    const records: SubscriptionRecord[] = [];
    const plans = Object.fromEntries(usagePlanIds.map((id, i) => [`:plan${i}`, id]));
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.table.client.send(
        new ScanCommand({
          TableName: this.table.tableName,
          ExclusiveStartKey: startKey,
          ConsistentRead: true,
          FilterExpression:
            `sk = :sub AND accountId = :account AND #region = :region AND ` +
            `usagePlanId IN (${Object.keys(plans).join(', ')})`,
          ExpressionAttributeNames: { '#region': 'region' },
          ExpressionAttributeValues: {
            ':sub': keys.subscription('').sk,
            ':account': accountId,
            ':region': region,
            ...plans,
          },
        }),
      );
      for (const item of page.Items ?? []) records.push(toRecord(item));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return records;
  }

  /**
   * The lost-key sweeper's candidates, up to `limit` (`truncated` when there are more): a Scan of the
   * ledger filtered to subscription records that may have keys the ledger does not hold — lost key
   * generations, FAILED or PENDING records (a crashed attempt may have created a key before recording
   * it), REVOKED records whose key is not deleted yet — and that changed since their last sweep. A Scan
   * reads the whole table (catalog, outbox, runs too): acceptable for an operator-invoked sweep; the
   * subscription records' gsi1 slot is taken by the usage-plan index.
   */
  async listSweepCandidates(limit: number): Promise<{ records: SubscriptionRecord[]; truncated: boolean }> {
    const records: SubscriptionRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.table.client.send(
        new ScanCommand({
          TableName: this.table.tableName,
          ExclusiveStartKey: startKey,
          FilterExpression:
            'sk = :sub AND begins_with(pk, :subPrefix) AND (attribute_exists(lostKeyGenerations) OR ' +
            '#status IN (:failed, :pending) OR (#status = :revoked AND keyDeleted <> :true))',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':sub': keys.subscription('').sk,
            ':subPrefix': keys.subscription('').pk,
            ':failed': SubscriptionStatus.FAILED,
            ':pending': SubscriptionStatus.PENDING,
            ':revoked': SubscriptionStatus.REVOKED,
            ':true': true,
          },
        }),
      );
      for (const item of page.Items ?? []) {
        const record = toRecord(item);
        if (!isSweepCandidate(record)) continue;
        if (records.length >= limit) return { records, truncated: true };
        records.push(record);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return { records, truncated: false };
  }

  /**
   * Takes the lease of a record for a sweep: only while its status is still `seen.status` and no
   * subscribe holds a live lease (so none creates a key meanwhile). `updatedAt` is left as it is.
   */
  takeSweepLease(
    seen: Pick<SubscriptionRecord, 'subscriptionId' | 'status'>,
    lease: SubscriptionLease,
  ): Promise<SubscriptionRecord | undefined> {
    return this.update(seen.subscriptionId, {
      set: { leaseOwner: lease.owner, leaseExpiresAt: lease.expiresAt },
      condition: '#status = :seen AND (attribute_not_exists(leaseExpiresAt) OR leaseExpiresAt < :nowMs)',
      values: { ':seen': seen.status, ':nowMs': this.now().getTime() },
      touch: false,
    });
  }

  /**
   * Marks a record swept (one conditional write): `sweptAt` (equal to `updatedAt`), `sweptKeys` grown
   * by `deletedKeys`, `lostKeyGenerations` cleared. With `owner` (a PENDING/FAILED record swept under
   * its lease) only by that lease, which is released, and a FAILED record's key id is cleared; else only
   * if the status (and an ACTIVE record's key) is still what the sweep saw, and a REVOKED record's key
   * counts as deleted. Undefined when the record changed meanwhile.
   */
  markSwept(
    seen: SubscriptionRecord,
    owner: string | undefined,
    deletedKeys: number,
  ): Promise<SubscriptionRecord | undefined> {
    const at = this.now().toISOString();
    const set: Record<string, unknown> = { sweptAt: at, updatedAt: at };
    const remove = ['lostKeyGenerations'];
    const values: Record<string, unknown> = {};
    let condition: string;
    if (owner) {
      remove.push('leaseOwner', 'leaseExpiresAt');
      if (seen.status === SubscriptionStatus.FAILED) remove.push('apiKeyId');
      condition = 'leaseOwner = :owner';
      values[':owner'] = owner;
    } else if (seen.status === SubscriptionStatus.ACTIVE) {
      condition = '#status = :seen AND apiKeyId = :keyId';
      values[':seen'] = seen.status;
      values[':keyId'] = seen.apiKeyId;
    } else {
      set.keyDeleted = true;
      set.keyDeletedAt = at;
      condition = '#status = :seen';
      values[':seen'] = seen.status;
    }
    return this.update(seen.subscriptionId, {
      set,
      add: { sweptKeys: deletedKeys },
      remove,
      condition,
      values,
    });
  }

  /**
   * One conditional UpdateItem; undefined when the condition (or the record's existence) failed.
   * Stamps `updatedAt` unless `touch` is false (a `set` of `updatedAt` wins over the stamp).
   */
  private async update(
    subscriptionId: string,
    change: RecordChange,
  ): Promise<SubscriptionRecord | undefined> {
    try {
      const out = await this.table.client.send(
        new UpdateCommand({ ...this.updateInput(subscriptionId, change), ReturnValues: 'ALL_NEW' }),
      );
      return out.Attributes ? toRecord(out.Attributes) : undefined;
    } catch (error) {
      if (isConditionFailed(error)) return undefined;
      throw error;
    }
  }

  /** The `UpdateItem` of a change to the record (also the `Update` of a transaction, see {@link keyDeletedGuard}). */
  private updateInput(subscriptionId: string, change: RecordChange) {
    const names: Record<string, string> = change.condition.includes('#status') ? { '#status': 'status' } : {};
    const values: Record<string, unknown> = { ...change.values };
    const sets: string[] = [];
    const set = change.touch === false ? change.set : { updatedAt: this.now().toISOString(), ...change.set };
    for (const [i, [field, value]] of Object.entries(set).entries()) {
      names[`#s${i}`] = field;
      values[`:s${i}`] = value;
      sets.push(`#s${i} = :s${i}`);
    }
    for (const [i, [field, value]] of Object.entries(change.append ?? {}).entries()) {
      names[`#p${i}`] = field;
      values[`:p${i}`] = value;
      values[':empty'] = [];
      sets.push(`#p${i} = list_append(if_not_exists(#p${i}, :empty), :p${i})`);
    }
    const adds: string[] = [];
    for (const [i, [field, value]] of Object.entries(change.add ?? {}).entries()) {
      names[`#a${i}`] = field;
      values[`:a${i}`] = value;
      adds.push(`#a${i} :a${i}`);
    }
    const removes: string[] = [];
    for (const [i, field] of (change.remove ?? []).entries()) {
      names[`#r${i}`] = field;
      removes.push(`#r${i}`);
    }
    const clauses: string[] = [];
    if (sets.length > 0) clauses.push(`SET ${sets.join(', ')}`);
    if (adds.length > 0) clauses.push(`ADD ${adds.join(', ')}`);
    if (removes.length > 0) clauses.push(`REMOVE ${removes.join(', ')}`);
    return {
      TableName: this.table.tableName,
      Key: keys.subscription(subscriptionId),
      UpdateExpression: clauses.join(' '),
      ConditionExpression: `attribute_exists(pk) AND ${change.condition}`,
      ExpressionAttributeNames: names,
      ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
    };
  }
}

/** A conditional change to a `SUB#` record: fields to set, add to, append to and remove. */
interface RecordChange {
  readonly set: Record<string, unknown>;
  readonly add?: Record<string, number>;
  readonly append?: Record<string, unknown[]>;
  readonly remove?: readonly string[];
  readonly condition: string;
  readonly values: Record<string, unknown>;
  readonly touch?: boolean;
}
