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
import { AwsAccessDeniedError, ConfigError, ErrorCode, toFederationError } from '../errors.js';
import type { LedgerTable } from '../ledger/table.js';
import type { Logger } from '../logger.js';
import { SubscriptionStatus } from '../model.js';
import { ApiKeys, type ApiKeysDeps, apiKeyDescriptionPrefix } from './api-keys.js';
import { type SubscriptionRecord, SubscriptionRepository } from './repository.js';
import { DEFAULT_SWEEP_LIMIT, parseRequest, type SweepRequest, SweepRequestSchema } from './schema.js';

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

/** The ledger table and logger of a sweep, and its API Gateway access (clients, buckets, retry). */
export interface SweeperDeps extends ApiKeysDeps {
  /** `sweepLostKeys` of the agent configuration: when false a sweep fails at once, without any AWS call. */
  readonly enabled: boolean;
  readonly table: LedgerTable;
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
  private readonly subscriptions: SubscriptionRepository;
  private readonly apiKeys: ApiKeys;
  private readonly result = {
    examined: 0,
    deleted: [] as { subscriptionId: string; apiKeyId: string }[],
    kept: [] as { subscriptionId: string; apiKeyId: string; reason: KeptReason }[],
    skipped: [] as { subscriptionId: string; reason: SkippedReason }[],
    errors: [] as { subscriptionId: string; code: string; message: string }[],
    truncated: false,
  };

  constructor(private readonly deps: SweeperDeps) {
    const now = deps.now ?? Date.now;
    this.now = now;
    this.subscriptions = new SubscriptionRepository(deps.table, { now: () => new Date(now()) });
    this.apiKeys = new ApiKeys(deps);
  }

  async run(request: SweepRequest): Promise<SweepResult> {
    let records: SubscriptionRecord[];
    if (request.subscriptionIds) {
      records = [];
      for (const subscriptionId of [...new Set(request.subscriptionIds)]) {
        const record = await this.subscriptions.get(subscriptionId);
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
      const listed = await this.subscriptions.listSweepCandidates(request.limit ?? DEFAULT_SWEEP_LIMIT);
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

  private async sweepOne(start: SubscriptionRecord): Promise<void> {
    const id = start.subscriptionId;
    const leased = start.status === SubscriptionStatus.PENDING || start.status === SubscriptionStatus.FAILED;
    const owner = leased ? randomUUID() : undefined;
    let record = start;
    if (owner) {
      // Under the record's lease, no subscribe creates a key while the sweep deletes.
      const taken = await this.subscriptions.takeSweepLease(record, {
        owner,
        expiresAt: this.now() + (this.deps.leaseMs ?? DEFAULT_LEASE_MS),
      });
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
      const named = await this.apiKeys.listNamed(record);
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
        if (await this.apiKeys.delete(record, keyId)) deleted.push(keyId);
      }
      // A revoked or failed record's own key: delete it even if its name or description changed.
      if (record.apiKeyId && !keep && !named.some((k) => k.id === record.apiKeyId)) {
        if (await this.apiKeys.delete(record, record.apiKeyId)) deleted.push(record.apiKeyId);
      }
    } catch (error) {
      for (const apiKeyId of deleted) this.result.deleted.push({ subscriptionId: id, apiKeyId });
      if (owner) await this.subscriptions.release(id, owner, { touch: false }).catch(() => false);
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
    const marked = await this.subscriptions.markSwept(record, owner, deleted.length);
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
}
