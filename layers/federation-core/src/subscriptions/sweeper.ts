/**
 * The opt-in lost-key sweeper. The documented policy has no `GET /apikeys`, so a key whose
 * `CreateApiKey` answer was lost (the record counts it in `lostKeyGenerations`) cannot be found again;
 * nor can a key a crashed attempt created before recording its id. Such keys are on no usage plan and
 * grant nothing, but they clutter the account. With `sweepLostKeys: true` the subscriptions role gets
 * one more permission, `apigateway:GET` on `/apikeys`, and an operator can run a sweep: per candidate
 * subscription, `GetApiKeys` with the name query `fed-<subscriptionId>` in the record's own
 * account-region, then `DeleteApiKey` for every key named for that subscription except the one the
 * ledger keeps (the ACTIVE key, or the key a PENDING record has recorded). See docs/subscriptions.md.
 */
import { randomUUID } from 'node:crypto';
import {
  type APIGatewayClient,
  type ApiKey,
  DeleteApiKeyCommand,
  GetApiKeysCommand,
} from '@aws-sdk/client-api-gateway';
import { GetCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import type { AwsClientFactory, AwsTarget } from '../aws/clients.js';
import { RateLimiterRegistry } from '../aws/rate-limiter.js';
import { callWithRetry, type RetryOptions } from '../aws/retry.js';
import type { LoadedConfig } from '../config/load.js';
import {
  AwsAccessDeniedError,
  ConfigError,
  ErrorCode,
  isNotFound,
  toFederationError,
  ValidationError,
} from '../errors.js';
import type { SubscriptionRecord } from '../ledger/subscriptions.js';
import { keys, type LedgerTable } from '../ledger/table.js';
import type { Logger } from '../logger.js';
import { SubscriptionStatus } from '../model.js';
import { MAX_EVENT_BYTES, parseRequest, UnsubscribeRequestSchema } from './schema.js';

/** Name of the API key of a subscription (`CreateApiKey`'s `name`). */
export function apiKeyName(subscriptionId: string): string {
  return `fed-${subscriptionId}`;
}

/** Start of the description of every key the agent creates for a subscription. */
export function apiKeyDescriptionPrefix(subscriptionId: string): string {
  return `apigw-federation subscription ${subscriptionId};`;
}

/** Largest number of subscriptions one sweep examines. */
export const MAX_SWEEP_LIMIT = 1000;
/** Subscriptions one sweep examines when the request names no limit. */
export const DEFAULT_SWEEP_LIMIT = 100;
/** Largest number of subscription ids one sweep request may name. */
export const MAX_SWEEP_IDS = 50;

export const SweepRequestSchema = z.strictObject({
  /** Sweep exactly these subscriptions (any status); default: every candidate in the ledger. */
  subscriptionIds: z
    .array(UnsubscribeRequestSchema.shape.subscriptionId)
    .min(1, 'expected at least one subscription id (or leave subscriptionIds out)')
    .max(MAX_SWEEP_IDS, `expected at most ${MAX_SWEEP_IDS} subscription ids`)
    .optional(),
  /** Largest number of candidate subscriptions examined by this call. */
  limit: z.number().int().min(1).max(MAX_SWEEP_LIMIT).optional(),
});
export type SweepRequest = z.infer<typeof SweepRequestSchema>;

/** The subscriptions function's `sweep` event. */
export const SweepEventSchema = SweepRequestSchema.extend({ action: z.literal('sweep') });
export type SweepEvent = z.infer<typeof SweepEventSchema>;

/** True when `input` is an event whose `action` is `sweep` (then parse it with {@link parseSweepEvent}). */
export function isSweepEvent(input: unknown): boolean {
  return (
    typeof input === 'object' &&
    input !== null &&
    !Array.isArray(input) &&
    (input as { action?: unknown }).action === 'sweep'
  );
}

/** Parses a `sweep` event (size first, then shape), or throws a ValidationError naming the bad fields. */
export function parseSweepEvent(input: unknown): SweepEvent {
  let size: number;
  try {
    size = Buffer.byteLength(JSON.stringify(input) ?? '', 'utf8');
  } catch {
    throw new ValidationError('Invalid event: expected a JSON object');
  }
  if (size > MAX_EVENT_BYTES) {
    throw new ValidationError(`Invalid event: ${size} bytes, expected at most ${MAX_EVENT_BYTES}`);
  }
  return parseRequest(SweepEventSchema, input);
}

/** Why a key named for a subscription was kept. */
export const KeptReason = {
  /** The record is ACTIVE and this is its key (on its usage plan): never deleted. */
  ACTIVE_KEY: 'ACTIVE_KEY',
  /** The record is PENDING and has recorded this key: a repeat of the subscribe attaches it. */
  RECORDED_KEY: 'RECORDED_KEY',
  /** Named like the subscription's keys but its description is not the agent's: not ours to delete. */
  FOREIGN: 'FOREIGN',
} as const;
export type KeptReason = (typeof KeptReason)[keyof typeof KeptReason];

/** Why a subscription was examined but not swept. */
export const SkippedReason = {
  /** A subscribe holds the record's lease: its attempt may be creating a key right now. */
  IN_FLIGHT: 'IN_FLIGHT',
  /** The record changed while the sweep ran (keys deleted, record not marked): the next sweep finishes. */
  CHANGED: 'CHANGED',
} as const;
export type SkippedReason = (typeof SkippedReason)[keyof typeof SkippedReason];

export interface SweepResult {
  /** Subscriptions examined (candidates, or the ids named in the request). */
  readonly examined: number;
  /** Keys deleted, each named for its subscription and not the key the ledger keeps. */
  readonly deleted: { readonly subscriptionId: string; readonly apiKeyId: string }[];
  /** Keys named for an examined subscription and left in place. */
  readonly kept: {
    readonly subscriptionId: string;
    readonly apiKeyId: string;
    readonly reason: KeptReason;
  }[];
  /** Subscriptions examined but not swept this time. */
  readonly skipped: { readonly subscriptionId: string; readonly reason: SkippedReason }[];
  /** Subscriptions whose sweep failed (the record is unchanged; a later sweep tries again). */
  readonly errors: { readonly subscriptionId: string; readonly code: string; readonly message: string }[];
  /** More candidates than `limit`: sweep again. */
  readonly truncated: boolean;
}

export interface SweeperDeps {
  /** `sweepLostKeys` of the agent configuration: when false a sweep fails at once, without any AWS call. */
  readonly enabled: boolean;
  readonly table: LedgerTable;
  /** API Gateway client of an account-region (`AwsClientFactory.apiGateway`). */
  readonly apiGateway: (target: AwsTarget) => APIGatewayClient;
  /** One token bucket per account-region, shared with the other API Gateway callers of the container. */
  readonly limiters?: RateLimiterRegistry;
  /** Retry policy of API Gateway calls (default 4 attempts). */
  readonly retry?: Omit<RetryOptions, 'limiter' | 'context'>;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Milliseconds clock. */
  readonly now?: () => number;
  /** How long the sweep holds the lease of a PENDING or FAILED record it sweeps. Default 60 s. */
  readonly leaseMs?: number;
}

const DEFAULT_LEASE_MS = 60_000;

/** The ConfigError of a sweep asked for while the opt-in is off. */
export function sweeperDisabledError(): ConfigError {
  return new ConfigError(
    'The lost-key sweeper is off: set "sweepLostKeys": true in the agent configuration and redeploy ' +
      '(the subscriptions role then gets apigateway:GET on arn:aws:apigateway:<region>::/apikeys; ' +
      'member-account roles need that statement too). See docs/subscriptions.md, "Sweeping lost keys".',
  );
}

/** A record whose keys the sweep should look at (see {@link listCandidates}). */
function isCandidate(record: SubscriptionRecord & { sweptAt?: string }): boolean {
  if (record.sweptAt !== undefined && record.sweptAt >= record.updatedAt) return false;
  if ((record.lostKeyGenerations?.length ?? 0) > 0) return true;
  if (record.status === SubscriptionStatus.FAILED || record.status === SubscriptionStatus.PENDING)
    return true;
  return record.status === SubscriptionStatus.REVOKED && record.keyDeleted !== true;
}

const INTERNAL_FIELDS = ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'kind'];

function toRecord(item: Record<string, unknown>): SweptRecord {
  const copy: Record<string, unknown> = { ...item };
  for (const field of INTERNAL_FIELDS) delete copy[field];
  return copy as unknown as SweptRecord;
}

type SweptRecord = SubscriptionRecord & { readonly sweptAt?: string };

/**
 * Candidate subscriptions, with a Scan of the ledger filtered to subscription records that may have
 * keys the ledger does not hold: lost key generations, FAILED or PENDING records (a crashed attempt may
 * have created a key before recording it), REVOKED records whose key is not deleted yet — and that
 * changed since their last sweep. A Scan reads the whole table (catalog, outbox, runs too): acceptable
 * for an operator-invoked sweep; the subscription records' gsi1 slot is taken by the usage-plan index.
 */
async function listCandidates(
  table: LedgerTable,
  limit: number,
): Promise<{ records: SweptRecord[]; truncated: boolean }> {
  const records: SweptRecord[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await table.client.send(
      new ScanCommand({
        TableName: table.tableName,
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
      if (!isCandidate(record)) continue;
      if (records.length >= limit) return { records, truncated: true };
      records.push(record);
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return { records, truncated: false };
}

/**
 * Sweeps the keys named for subscriptions that the ledger does not hold. For each subscription (the
 * ones named in `subscriptionIds`, or every candidate of the ledger up to `limit`): `GetApiKeys` with
 * the name query `fed-<subscriptionId>` (pages of 500) in the record's own account-region, then
 * `DeleteApiKey` for each key whose name is exactly that and whose description is the agent's, except
 * the ACTIVE record's key (never deleted) and a PENDING record's recorded key. A FAILED or PENDING
 * record is swept under its lease (a subscribe in flight is skipped, and none starts meanwhile). Then
 * the record is marked with a conditional write: `sweptAt`, `lostKeyGenerations` cleared (so `get`
 * reports `lostKeys: 0`), `sweptKeys` counting the deletions, and a REVOKED record's `keyDeleted`.
 *
 * Throws a ConfigError (and makes no AWS call) when the opt-in is off, and an AwsAccessDeniedError
 * when a role lacks the opt-in `GET /apikeys`; other failures are reported per subscription in `errors`.
 */
export async function sweepLostKeys(deps: SweeperDeps, input: unknown = {}): Promise<SweepResult> {
  if (!deps.enabled) throw sweeperDisabledError();
  const request = parseRequest(SweepRequestSchema, input, 'sweep');
  return new Sweeper(deps).run(request);
}

class Sweeper {
  private readonly now: () => number;
  private readonly result = {
    examined: 0,
    deleted: [] as { subscriptionId: string; apiKeyId: string }[],
    kept: [] as { subscriptionId: string; apiKeyId: string; reason: KeptReason }[],
    skipped: [] as { subscriptionId: string; reason: SkippedReason }[],
    errors: [] as { subscriptionId: string; code: string; message: string }[],
    truncated: false,
  };

  constructor(private readonly deps: SweeperDeps) {
    this.now = deps.now ?? Date.now;
  }

  async run(request: SweepRequest): Promise<SweepResult> {
    let records: SweptRecord[];
    if (request.subscriptionIds) {
      records = [];
      for (const subscriptionId of [...new Set(request.subscriptionIds)]) {
        const record = await this.get(subscriptionId);
        if (record) records.push(record);
        else {
          this.result.errors.push({
            subscriptionId,
            code: ErrorCode.NOT_FOUND,
            message: `Subscription ${subscriptionId} does not exist`,
          });
        }
      }
    } else {
      const listed = await listCandidates(this.deps.table, request.limit ?? DEFAULT_SWEEP_LIMIT);
      records = listed.records;
      this.result.truncated = listed.truncated;
    }
    for (const record of records) {
      this.result.examined++;
      await this.sweepOne(record);
    }
    this.deps.logger?.info('lost-key sweep done', {
      examined: this.result.examined,
      deleted: this.result.deleted.length,
      kept: this.result.kept.length,
      skipped: this.result.skipped.length,
      errors: this.result.errors.length,
      truncated: this.result.truncated,
    });
    return this.result;
  }

  private async sweepOne(start: SweptRecord): Promise<void> {
    const id = start.subscriptionId;
    const leased = start.status === SubscriptionStatus.PENDING || start.status === SubscriptionStatus.FAILED;
    const owner = leased ? randomUUID() : undefined;
    let record = start;
    if (owner) {
      const taken = await this.takeLease(record, owner);
      if (!taken) {
        this.result.skipped.push({ subscriptionId: id, reason: SkippedReason.IN_FLIGHT });
        return;
      }
      record = taken;
    }
    const deleted: string[] = [];
    try {
      const keep =
        record.status === SubscriptionStatus.ACTIVE || record.status === SubscriptionStatus.PENDING
          ? record.apiKeyId
          : undefined;
      const named = await this.listKeys(record);
      for (const key of named) {
        const keyId = key.id as string;
        if (keyId === keep) {
          this.result.kept.push({
            subscriptionId: id,
            apiKeyId: keyId,
            reason:
              record.status === SubscriptionStatus.ACTIVE ? KeptReason.ACTIVE_KEY : KeptReason.RECORDED_KEY,
          });
          continue;
        }
        if (!key.description?.startsWith(apiKeyDescriptionPrefix(id))) {
          this.result.kept.push({ subscriptionId: id, apiKeyId: keyId, reason: KeptReason.FOREIGN });
          continue;
        }
        if (await this.deleteKey(record, keyId)) deleted.push(keyId);
      }
      // A revoked or failed record's own key: delete it even if its name or description changed.
      if (record.apiKeyId && !keep && !named.some((k) => k.id === record.apiKeyId)) {
        if (await this.deleteKey(record, record.apiKeyId)) deleted.push(record.apiKeyId);
      }
    } catch (error) {
      for (const apiKeyId of deleted) this.result.deleted.push({ subscriptionId: id, apiKeyId });
      if (owner) await this.releaseLease(id, owner);
      const failure = toFederationError(error, `Sweep ${id}`);
      if (failure instanceof AwsAccessDeniedError) {
        throw new AwsAccessDeniedError(
          `${failure.message} — the sweeper needs the opt-in apigateway:GET on ` +
            `arn:aws:apigateway:${record.region}::/apikeys (and DELETE on /apikeys/*) in account ` +
            `${record.accountId}: deploy with "sweepLostKeys": true (member-account roles need the statement too)`,
          { cause: failure.cause ?? failure },
        );
      }
      this.deps.logger?.warn('sweep of a subscription failed', {
        subscriptionId: id,
        error: failure.toJSON(),
      });
      this.result.errors.push({ subscriptionId: id, code: failure.code, message: failure.message });
      return;
    }
    for (const apiKeyId of deleted) this.result.deleted.push({ subscriptionId: id, apiKeyId });
    const marked = await this.markSwept(record, owner, deleted.length);
    if (!marked) this.result.skipped.push({ subscriptionId: id, reason: SkippedReason.CHANGED });
    if (deleted.length > 0) {
      this.deps.logger?.info('lost keys deleted', {
        subscriptionId: id,
        status: record.status,
        accountId: record.accountId,
        region: record.region,
        apiKeyIds: deleted,
      });
    }
  }

  /** Every key named exactly `fed-<subscriptionId>` in the record's account-region (the query is a prefix). */
  private async listKeys(record: SweptRecord): Promise<ApiKey[]> {
    const name = apiKeyName(record.subscriptionId);
    const found: ApiKey[] = [];
    let position: string | undefined;
    do {
      const page = await this.call(record, 'GetApiKeys', (client) =>
        client.send(new GetApiKeysCommand({ nameQuery: name, limit: 500, position, includeValues: false })),
      );
      for (const key of page.items ?? []) if (key.id && key.name === name) found.push(key);
      position = page.position;
    } while (position);
    return found;
  }

  /** `DeleteApiKey`; false when the key was already gone. */
  private async deleteKey(record: SweptRecord, apiKeyId: string): Promise<boolean> {
    return this.call(record, 'DeleteApiKey', async (client) => {
      try {
        await client.send(new DeleteApiKeyCommand({ apiKey: apiKeyId }));
        return true;
      } catch (error) {
        if (isNotFound(error)) return false;
        throw error;
      }
    });
  }

  private async call<T>(
    record: SweptRecord,
    operation: string,
    fn: (client: APIGatewayClient) => Promise<T>,
  ): Promise<T> {
    const client = this.deps.apiGateway({
      region: record.region,
      accountId: record.accountId,
      ...(record.roleArn ? { roleArn: record.roleArn } : {}),
    });
    return callWithRetry(() => fn(client), {
      maxAttempts: 4,
      ...this.deps.retry,
      limiter: this.deps.limiters?.forTarget(record.accountId, record.region),
      context: `${operation} (${record.accountId}/${record.region})`,
    });
  }

  private async get(subscriptionId: string): Promise<SweptRecord | undefined> {
    const out = await this.deps.table.client.send(
      new GetCommand({
        TableName: this.deps.table.tableName,
        Key: keys.subscription(subscriptionId),
        ConsistentRead: true,
      }),
    );
    return out.Item ? toRecord(out.Item) : undefined;
  }

  /** Takes the lease of a PENDING/FAILED record that no subscribe holds, so none creates a key meanwhile. */
  private takeLease(record: SweptRecord, owner: string): Promise<SweptRecord | undefined> {
    const nowMs = this.now();
    return this.update(record.subscriptionId, {
      expression: 'SET leaseOwner = :owner, leaseExpiresAt = :until',
      condition: '#status = :seen AND (attribute_not_exists(leaseExpiresAt) OR leaseExpiresAt < :nowMs)',
      values: {
        ':owner': owner,
        ':until': nowMs + (this.deps.leaseMs ?? DEFAULT_LEASE_MS),
        ':seen': record.status,
        ':nowMs': nowMs,
      },
    });
  }

  private async releaseLease(subscriptionId: string, owner: string): Promise<void> {
    await this.update(subscriptionId, {
      expression: 'REMOVE leaseOwner, leaseExpiresAt',
      condition: 'leaseOwner = :owner',
      values: { ':owner': owner },
    }).catch(() => undefined);
  }

  /**
   * Marks the record swept (one conditional write): under the sweep's lease for PENDING/FAILED, else
   * only if its status (and an ACTIVE record's key) is still what the sweep saw.
   */
  private markSwept(record: SweptRecord, owner: string | undefined, deletedCount: number) {
    const at = new Date(this.now()).toISOString();
    const sets = ['sweptAt = :at', 'updatedAt = :at'];
    const removes = ['lostKeyGenerations'];
    const values: Record<string, unknown> = { ':at': at, ':n': deletedCount };
    let condition: string;
    if (owner) {
      removes.push('leaseOwner', 'leaseExpiresAt');
      if (record.status === SubscriptionStatus.FAILED) removes.push('apiKeyId');
      condition = 'leaseOwner = :owner';
      values[':owner'] = owner;
    } else if (record.status === SubscriptionStatus.ACTIVE) {
      condition = '#status = :seen AND apiKeyId = :keyId';
      values[':seen'] = record.status;
      values[':keyId'] = record.apiKeyId;
    } else {
      sets.push('keyDeleted = :true');
      condition = '#status = :seen';
      values[':seen'] = record.status;
      values[':true'] = true;
    }
    return this.update(record.subscriptionId, {
      expression: `SET ${sets.join(', ')} ADD sweptKeys :n REMOVE ${removes.join(', ')}`,
      condition,
      values,
    });
  }

  private async update(
    subscriptionId: string,
    change: { expression: string; condition: string; values: Record<string, unknown> },
  ): Promise<SweptRecord | undefined> {
    try {
      const out = await this.deps.table.client.send(
        new UpdateCommand({
          TableName: this.deps.table.tableName,
          Key: keys.subscription(subscriptionId),
          UpdateExpression: change.expression,
          ConditionExpression: `attribute_exists(pk) AND ${change.condition}`,
          ...(change.condition.includes('#status')
            ? { ExpressionAttributeNames: { '#status': 'status' } }
            : {}),
          ExpressionAttributeValues: change.values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return out.Attributes ? toRecord(out.Attributes) : undefined;
    } catch (error) {
      if ((error as { name?: string } | undefined)?.name === 'ConditionalCheckFailedException')
        return undefined;
      throw error;
    }
  }
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
