/**
 * The subscribe / unsubscribe / get saga of subscriptions: API keys on usage plans, created exactly
 * once per `subscriptionId`, with the ledger record as the idempotency lock. The API Gateway calls are
 * in `api-keys.ts`, the failure classification in `failures.ts`, the outward shapes in `views.ts`.
 */
import { randomUUID } from 'node:crypto';
import { roleArnOf } from '../config/load.js';
import type { Source } from '../config/schema.js';
import {
  BusyError,
  ConfigError,
  ConflictError,
  type FederationError,
  NotFoundError,
  toFederationError,
} from '../errors.js';
import type { CatalogRepository } from '../ledger/catalog.js';
import type { OutboxEvent } from '../ledger/outbox.js';
import type { Logger } from '../logger.js';
import type { FederatedApi } from '../model.js';
import { SubscriptionStatus } from '../model.js';
import { ApiKeys, type ApiKeysDeps } from './api-keys.js';
import { failureOf, HookAbort, isRetryableNow, isTransient, LeaseLost, Retryable } from './failures.js';
import type { KeyMaterial, KeyMaterialProvider } from './key-material.js';
import { type RemovedPlan, revokeForRemovedPlan } from './plan-removal.js';
import { KeyMode, RevokeReason, type SubscriptionRecord, type SubscriptionRepository } from './repository.js';
import {
  canonicalRequest,
  FinishRevocationsRequestSchema,
  GetSubscriptionRequestSchema,
  parseRequest,
  RevokeKeysRequestSchema,
  type SubscribeRequest,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from './schema.js';
import { type EmitEvents, revokedEvent, type SubscriptionView, toView, type WithEvents } from './views.js';

/** Steps of a subscribe, in order. A hook runs after each (see {@link SubscriptionHooks}). */
export const SubscribeStep = {
  /** The PENDING record exists and this attempt holds its lease. */
  PENDING: 'pending',
  /** `CreateApiKey` answered (its id is not recorded yet). */
  API_KEY_CREATED: 'apiKeyCreated',
  /** The key id is on the record. */
  KEY_ID_RECORDED: 'keyIdRecorded',
  /** `CreateUsagePlanKey` answered (or the key was already on the plan). */
  USAGE_PLAN_KEY_CREATED: 'usagePlanKeyCreated',
} as const;
export type SubscribeStep = (typeof SubscribeStep)[keyof typeof SubscribeStep];

/** Steps of a `revoke-keys` (hooks as for {@link SubscribeStep}). */
export const RevokeKeysStep = {
  /** `DeleteApiKey` answered (or found the key gone); the event and the ledger are still to come. */
  KEY_DELETED: 'revokeKeys.keyDeleted',
} as const;
export type RevokeKeysStep = (typeof RevokeKeysStep)[keyof typeof RevokeKeysStep];

/** What a `revoke-keys` did, by subscription id (no key value, ever). */
export interface RevokeKeysResult {
  /** Keys deleted (or found gone) by this call; each got its `subscription.revoked` with `keyDeleted`. */
  readonly deleted: readonly string[];
  /** Already marked deleted: nothing to do. */
  readonly alreadyDeleted: readonly string[];
  /** Unknown, or not REVOKED: left alone. */
  readonly skipped: readonly string[];
}

/** What a `finish-revocations` did (subscription ids, no key value). */
export interface FinishRevocationsResult extends RevokeKeysResult {
  /** Keys that could not be deleted this time: the next call tries them again. */
  readonly failed: readonly string[];
  /** More revocations wait than this call looked at. */
  readonly more: boolean;
}

/**
 * How long a revocation's own key deletion may take before `finish-revocations` steps in: the
 * unsubscribe's, or the `revoke-keys` hand-over's with Lambda's two retries (about 3 minutes unless
 * the function is throttled). Both finishing the same key at once is harmless (one event).
 */
export const FINISH_REVOCATIONS_AFTER_MS = 15 * 60_000;

/**
 * Test and chaos hooks. `afterStep` runs after each subscribe step; whatever it throws leaves the
 * subscribe at once, with no compensation and no lease release — exactly what a crash (a killed
 * Lambda, a lost response) would leave behind.
 */
export interface SubscriptionHooks {
  afterStep?(
    step: SubscribeStep | RevokeKeysStep,
    context: { subscriptionId: string; apiKeyId?: string },
  ): void | Promise<void>;
}

/** The answer to a subscribe: the same for every repeat of the same request. */
export interface SubscribeResult {
  readonly subscriptionId: string;
  readonly status: typeof SubscriptionStatus.ACTIVE;
  readonly apiKeyId: string;
  /** The key value: re-derived (derived keys) or echoed from the request (custom keys). */
  readonly apiKey: string;
  readonly usagePlanId: string;
  readonly apiId: string;
  readonly planId: string;
}

export interface UnsubscribeResult {
  readonly subscriptionId: string;
  readonly status: typeof SubscriptionStatus.REVOKED;
}

/** An unsubscribe's answer and the events it appended (none when an earlier call had finished it). */
export interface UnsubscribeOutcome {
  readonly result: UnsubscribeResult;
  readonly events: readonly OutboxEvent[];
}

/** The saga's ledger, catalog, sources and key material, and its API Gateway access (clients, buckets, retry). */
export interface SubscriptionServiceDeps extends ApiKeysDeps {
  readonly catalog: Pick<CatalogRepository, 'getApi'>;
  readonly subscriptions: SubscriptionRepository;
  /** Configured sources (`effectiveSources`): a catalog entry's `source.name` selects its roleArn. */
  readonly sources: readonly Pick<Source, 'name' | 'roleArn' | 'organization'>[];
  readonly keys: KeyMaterialProvider;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly hooks?: SubscriptionHooks;
  /** Milliseconds clock; must be the one the repository uses. */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface SubscribeOptions {
  /**
   * How long this attempt may hold the subscription before another may take over (a crashed
   * attempt blocks repeats this long). Default 30 s; the handler passes the Lambda's remaining time.
   */
  readonly leaseMs?: number;
  /** How long a repeat waits for an attempt in flight before answering BUSY. Default 10 s. */
  readonly waitMs?: number;
  /** Poll interval while waiting. Default 100 ms. */
  readonly pollMs?: number;
}

/** How long a catalog entry read by this container serves later subscribes (see `resolvePlan`). */
const CATALOG_CACHE_MS = 60_000;
const DEFAULT_LEASE_MS = 30_000;
const DEFAULT_WAIT_MS = 10_000;
const DEFAULT_POLL_MS = 100;

/**
 * Subscriptions: API keys on usage plans, created exactly once per `subscriptionId`.
 *
 * The ledger record is the idempotency lock (Powertools style): one conditional write creates it
 * PENDING with a lease, or takes over a PENDING/FAILED record whose lease expired; a keyed request
 * hash rejects a changed repeat. Then `CreateApiKey` → key id recorded → `CreateUsagePlanKey` →
 * ACTIVE, each step a conditional write by the lease owner. A crash between steps leaves a PENDING
 * record that the next attempt completes from where it stopped. See docs/subscriptions.md.
 *
 * Why not the Powertools idempotency utility itself: it stores the function's response to replay it,
 * and a subscribe's response carries the key value, which must never be stored; and on a failure it
 * deletes its record, which is exactly what a resume needs (the recorded key id, the generation).
 */
export class SubscriptionService {
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly apiKeys: ApiKeys;
  /** Catalog entries this container read recently (see {@link resolvePlan}). */
  private readonly catalogCache = new Map<string, { api: FederatedApi; until: number }>();

  constructor(private readonly deps: SubscriptionServiceDeps) {
    this.apiKeys = new ApiKeys(deps);
    this.now = deps.now ?? Date.now;
    this.sleep = deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /**
   * Creates (once) an API key for the subscription on the plan's usage plan and returns it. Repeats
   * of the same request return the same answer; a repeat with other fields is a CONFLICT; a repeat
   * while another attempt is in flight waits for it (up to `waitMs`, then BUSY).
   */
  async subscribe(input: unknown, options: SubscribeOptions = {}): Promise<SubscribeResult> {
    const request = parseRequest(SubscribeRequestSchema, input, 'subscribe');
    const { api, plan } = await this.resolvePlan(request.apiId, request.planId);
    const roleArn = this.roleArnOf(api.source.name, api.id, api.source.accountId, api.source.region);
    const material = await this.deps.keys.current();
    const keyMode = request.apiKey === undefined ? KeyMode.DERIVED : KeyMode.CUSTOM;
    // One lease end for the whole call: an invocation that dies at its timeout frees it then.
    const leaseUntil = this.now() + (options.leaseMs ?? DEFAULT_LEASE_MS);
    const deadline = this.now() + (options.waitMs ?? DEFAULT_WAIT_MS);
    const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
    let waited = false;
    let exists = false;

    for (;;) {
      const owner = randomUUID();
      const created = exists
        ? undefined
        : await this.deps.subscriptions.createPending(
            {
              subscriptionId: request.subscriptionId,
              apiId: api.id,
              planId: plan.id,
              usagePlanId: plan.usagePlanId,
              accountId: api.source.accountId,
              region: api.source.region,
              ...(roleArn ? { roleArn } : {}),
              application: { id: request.application.id, name: request.application.name },
              keyMode,
              secretVersionId: material.versionId,
              requestHash: material.digest(canonicalRequest(request)),
            },
            { owner, expiresAt: leaseUntil },
          );
      if (created) {
        const outcome = await this.attempt(created, owner, request, material, deadline);
        if (outcome) return outcome;
        exists = true;
        waited = true;
        await this.sleep(pollMs);
        continue;
      }

      const existing = await this.deps.subscriptions.get(request.subscriptionId);
      exists = existing !== undefined;
      if (!existing) continue;
      const existingMaterial =
        existing.secretVersionId === material.versionId
          ? material
          : await this.deps.keys.version(existing.secretVersionId);
      const hash = existingMaterial.digest(canonicalRequest(request));
      if (hash !== existing.requestHash) {
        throw new ConflictError(
          `Subscription ${request.subscriptionId} exists with another API, plan, application or key: ` +
            'repeat it unchanged, or use a new subscriptionId',
        );
      }
      switch (existing.status) {
        case SubscriptionStatus.ACTIVE:
          return this.answer(existing, request, existingMaterial);
        case SubscriptionStatus.REVOKED:
          throw new ConflictError(
            `Subscription ${request.subscriptionId} was revoked (${existing.revokeReason ?? 'revoked'}): ` +
              'subscribe with a new subscriptionId',
          );
        case SubscriptionStatus.FAILED:
          // A failure that happened while this caller waited is its answer too; an old one is retried.
          if (waited) throw failureOf(existing);
          break;
        default:
          break;
      }
      const acquired = await this.deps.subscriptions.acquire(request.subscriptionId, existing.requestHash, {
        owner,
        expiresAt: leaseUntil,
      });
      if (acquired) {
        const outcome = await this.attempt(acquired, owner, request, existingMaterial, deadline);
        if (outcome) return outcome;
        waited = true;
        await this.sleep(pollMs);
        continue;
      }
      if (this.now() >= deadline) {
        throw new BusyError(
          `Subscription ${request.subscriptionId} is being created by another request: retry in a few seconds`,
        );
      }
      waited = true;
      await this.sleep(pollMs);
    }
  }

  /**
   * Revokes the subscription: REVOKED in the ledger, then `DeleteApiKey` in the key's own
   * account-region, then its `subscription.revoked` (`keyDeleted: true`) through `emit`, in one
   * transaction with the record's `keyDeleted` mark. A key already gone counts as deleted; a repeat
   * answers the same and finishes what a failed call left, event included; a call that finds the key
   * marked deleted emits nothing (the call that marked it emitted the event).
   */
  async unsubscribe(input: unknown, emit: EmitEvents): Promise<UnsubscribeOutcome> {
    const { subscriptionId } = parseRequest(UnsubscribeRequestSchema, input, 'unsubscribe');
    // The revoke write first, with no read before it (the usual case: an ACTIVE subscription); the
    // record is read only when the write's condition did not hold.
    let record =
      (await this.deps.subscriptions.revoke(
        subscriptionId,
        [SubscriptionStatus.ACTIVE],
        RevokeReason.UNSUBSCRIBED,
      )) ?? (await this.deps.subscriptions.get(subscriptionId));
    for (let tries = 0; record && record.status !== SubscriptionStatus.REVOKED; tries++) {
      if (
        record.status === SubscriptionStatus.PENDING &&
        record.leaseExpiresAt !== undefined &&
        record.leaseExpiresAt >= this.now()
      ) {
        throw new BusyError(`Subscription ${subscriptionId} is being created: retry in a few seconds`);
      }
      const revoked = await this.deps.subscriptions.revoke(
        subscriptionId,
        [SubscriptionStatus.ACTIVE, SubscriptionStatus.PENDING, SubscriptionStatus.FAILED],
        RevokeReason.UNSUBSCRIBED,
      );
      if (revoked) {
        record = revoked;
        break;
      }
      if (tries >= 3) throw new BusyError(`Subscription ${subscriptionId} keeps changing: retry`);
      record = await this.deps.subscriptions.get(subscriptionId);
    }
    if (!record) throw new NotFoundError(`Subscription ${subscriptionId} does not exist`);
    const result = { subscriptionId, status: SubscriptionStatus.REVOKED } as const;
    if (record.keyDeleted) return { result, events: [] };
    if (record.apiKeyId) await this.apiKeys.delete(record, record.apiKeyId);
    const events = await this.emitKeyDeleted(record, emit);
    this.deps.logger?.info('subscription revoked', {
      subscriptionId,
      apiKeyId: record.apiKeyId,
      reason: record.revokeReason,
    });
    return { result, events };
  }

  /**
   * The internal `revoke-keys` action: discovery hands over the subscriptions a plan removal revoked
   * (asynchronous invoke, retried by Lambda). For each REVOKED record whose key is not yet deleted:
   * `DeleteApiKey` through the key bucket (a key already gone counts as deleted), then its
   * `subscription.revoked` with `keyDeleted: true` goes to `emit` in one transaction with the ledger's
   * `keyDeleted` mark. A crash after the deletion repeats the rest on the next attempt (the event
   * exactly once, never lost). A record that is not REVOKED is left alone (this action revokes nothing:
   * it never deletes the key of a live subscription); an unknown id is skipped. Every id is tried; the
   * first failure is thrown after, so Lambda retries the invocation.
   */
  async revokeKeys(input: unknown, emit: EmitEvents): Promise<RevokeKeysResult> {
    const { subscriptionIds } = parseRequest(RevokeKeysRequestSchema, input, 'revoke-keys');
    const {
      failed: _failed,
      failure,
      stopped: _stopped,
      ...result
    } = await this.deleteRevokedKeys(subscriptionIds, emit);
    if (failure !== undefined) throw failure;
    return result;
  }

  /**
   * The scheduled `finish-revocations` action: the revocations whose key is still not deleted
   * {@link FINISH_REVOCATIONS_AFTER_MS} after they were made — a `revoke-keys` hand-over that ended in
   * the dead-letter queue, an unsubscribe whose deletion failed and was never repeated — oldest first,
   * at most `limit`, each finished as `revoke-keys` does. A key that cannot be deleted now is reported
   * in `failed` and tried again by the next call; `more` says that more revocations wait. With
   * `options.until` (epoch ms: the invocation's end less a reserve) it stops taking new ones then,
   * and says `more`: the key bucket paces the deletions, and the function must not time out mid-way.
   */
  async finishRevocations(
    input: unknown,
    emit: EmitEvents,
    options: { withinMs?: number } = {},
  ): Promise<FinishRevocationsResult> {
    const { limit } = parseRequest(FinishRevocationsRequestSchema, input, 'finish-revocations');
    const before = new Date(this.now() - FINISH_REVOCATIONS_AFTER_MS).toISOString();
    const listed = await this.deps.subscriptions.listKeysToDelete(before, limit);
    const until = options.withinMs === undefined ? undefined : this.now() + options.withinMs;
    const outOfTime = () => until !== undefined && this.now() >= until;
    const {
      failure: _failure,
      stopped,
      ...result
    } = await this.deleteRevokedKeys(listed.subscriptionIds, emit, outOfTime);
    return { ...result, more: listed.more || stopped };
  }

  /**
   * For each REVOKED record whose key is not yet deleted: `DeleteApiKey` through the key bucket (a key
   * already gone counts as deleted), then its `subscription.revoked` with `keyDeleted: true` in one
   * transaction with the ledger's `keyDeleted` mark. A record that is not REVOKED is skipped (this never
   * deletes the key of a live subscription), and so is an unknown id. Every id is tried, unless `stop`
   * says so before one (`stopped`); the first failure is handed back with the ids that failed.
   */
  private async deleteRevokedKeys(
    subscriptionIds: readonly string[],
    emit: EmitEvents,
    stop: () => boolean = () => false,
  ): Promise<RevokeKeysResult & { failed: string[]; failure?: unknown; stopped: boolean }> {
    const deleted: string[] = [];
    const alreadyDeleted: string[] = [];
    const skipped: string[] = [];
    const failed: string[] = [];
    let failure: unknown;
    const ids = [...new Set(subscriptionIds)];
    for (const subscriptionId of ids) {
      if (stop()) {
        return {
          deleted,
          alreadyDeleted,
          skipped,
          failed,
          stopped: true,
          ...(failure === undefined ? {} : { failure }),
        };
      }
      try {
        const record = await this.deps.subscriptions.get(subscriptionId);
        if (!record || record.status !== SubscriptionStatus.REVOKED) {
          skipped.push(subscriptionId);
          continue;
        }
        if (record.keyDeleted) {
          alreadyDeleted.push(subscriptionId);
          continue;
        }
        if (record.apiKeyId) {
          await this.apiKeys.delete(record, record.apiKeyId);
          await this.hook(RevokeKeysStep.KEY_DELETED, subscriptionId, record.apiKeyId);
        }
        if ((await this.emitKeyDeleted(record, emit)).length === 0) {
          alreadyDeleted.push(subscriptionId); // a concurrent call marked it, with its event
          continue;
        }
        deleted.push(subscriptionId);
        this.deps.logger?.info('revoked subscription key deleted', {
          subscriptionId,
          apiKeyId: record.apiKeyId,
          reason: record.revokeReason,
        });
      } catch (error) {
        if (error instanceof HookAbort) throw error.original; // a planned crash: nothing after it runs
        failure ??= error;
        failed.push(subscriptionId);
        this.deps.logger?.warn('revoked subscription key not deleted (tried again later)', {
          subscriptionId,
          error: toFederationError(error, 'DeleteApiKey').toJSON(),
        });
      }
    }
    return {
      deleted,
      alreadyDeleted,
      skipped,
      failed,
      stopped: false,
      ...(failure === undefined ? {} : { failure }),
    };
  }

  /** `subscription.revoked` with `keyDeleted: true`, appended with the record's mark (see {@link EmitEvents}). */
  private emitKeyDeleted(record: SubscriptionRecord, emit: EmitEvents): Promise<readonly OutboxEvent[]> {
    const at = new Date(this.now()).toISOString();
    return emit([revokedEvent({ ...record, keyDeleted: true, keyDeletedAt: at })], {
      guard: this.deps.subscriptions.keyDeletedGuard(record.subscriptionId, at),
    });
  }

  /** The subscription's record without any key value. */
  async get(input: unknown): Promise<SubscriptionView> {
    const { subscriptionId } = parseRequest(GetSubscriptionRequestSchema, input, 'get');
    const record = await this.deps.subscriptions.get(subscriptionId);
    if (!record) throw new NotFoundError(`Subscription ${subscriptionId} does not exist`);
    return toView(record);
  }

  /** Plan removal on this service's ledger: see the function {@link revokeForRemovedPlan}. */
  revokeForRemovedPlan(plan: RemovedPlan): Promise<WithEvents<{ subscriptionIds: string[] }>> {
    return revokeForRemovedPlan(this.deps.subscriptions, plan);
  }

  // -------------------------------------------------------------------------------------------------

  /**
   * The catalog entry and plan of a request. A plan seen in the last {@link CATALOG_CACHE_MS} is taken
   * from the container's cache (no ledger read on the way to the PENDING write): a stale hit is safe,
   * because every attempt re-reads the catalog consistently after its PENDING write and fails NOT_FOUND
   * if the plan is gone. A miss (unknown API or plan) always reads the ledger.
   */
  private async resolvePlan(apiId: string, planId: string) {
    const cached = this.catalogCache.get(apiId);
    if (cached && cached.until > this.now()) {
      const plan = cached.api.plans.find((p) => p.id === planId);
      if (plan) return { api: cached.api, plan };
    }
    const api = await this.deps.catalog.getApi(apiId);
    if (api) this.catalogCache.set(apiId, { api, until: this.now() + CATALOG_CACHE_MS });
    else this.catalogCache.delete(apiId);
    if (!api) throw new NotFoundError(`API ${apiId} is not in the catalog: run discovery or check the id`);
    const plan = api.plans.find((p) => p.id === planId);
    if (!plan) {
      throw new NotFoundError(
        `Plan ${planId} is not a plan of API ${apiId}: expected one of [${api.plans.map((p) => p.id).join(', ')}]`,
      );
    }
    return { api, plan };
  }

  /** Resolves when the record's plan is still in the catalog (consistent read); NOT_FOUND otherwise. */
  private async planStillListed(record: SubscriptionRecord): Promise<void> {
    const api = await this.deps.catalog.getApi(record.apiId);
    const plan = api?.plans.find((p) => p.id === record.planId);
    if (api) this.catalogCache.set(api.id, { api, until: this.now() + CATALOG_CACHE_MS });
    else this.catalogCache.delete(record.apiId);
    if (!plan || plan.usagePlanId !== record.usagePlanId) {
      throw new NotFoundError(
        `Plan ${record.planId} of API ${record.apiId} was removed from the catalog while subscription ${record.subscriptionId} was being created`,
      );
    }
  }

  private roleArnOf(
    sourceName: string,
    apiId: string,
    accountId: string,
    region: string,
  ): string | undefined {
    const source = this.deps.sources.find((s) => s.name === sourceName);
    if (!source) {
      throw new ConfigError(
        `API ${apiId} was discovered through source "${sourceName}", which is no longer configured`,
      );
    }
    // An organisation source reaches each of its accounts through the scope's role.
    return roleArnOf(source, accountId, region);
  }

  private answer(
    record: SubscriptionRecord,
    request: SubscribeRequest,
    material: KeyMaterial,
  ): SubscribeResult {
    const apiKey =
      record.keyMode === KeyMode.CUSTOM
        ? (request.apiKey as string)
        : material.deriveApiKey(record.subscriptionId, record.keyGeneration);
    return {
      subscriptionId: record.subscriptionId,
      status: SubscriptionStatus.ACTIVE,
      apiKeyId: record.apiKeyId as string,
      apiKey,
      usagePlanId: record.usagePlanId,
      apiId: record.apiId,
      planId: record.planId,
    };
  }

  private async hook(
    step: SubscribeStep | RevokeKeysStep,
    subscriptionId: string,
    apiKeyId?: string,
  ): Promise<void> {
    if (!this.deps.hooks?.afterStep) return;
    try {
      await this.deps.hooks.afterStep(step, { subscriptionId, apiKeyId });
    } catch (error) {
      throw new HookAbort(error);
    }
  }

  /**
   * Runs the steps; after a transient AWS failure (lease freed, progress kept) answers undefined
   * while `deadline` allows another attempt, so concurrent callers and this one converge on one answer.
   */
  private async attempt(
    record: SubscriptionRecord,
    owner: string,
    request: SubscribeRequest,
    material: KeyMaterial,
    deadline: number,
  ): Promise<SubscribeResult | undefined> {
    try {
      return await this.run(record, owner, request, material);
    } catch (error) {
      if (!(error instanceof Retryable)) throw error;
      if (this.now() >= deadline) throw error.failure;
      this.deps.logger?.warn('subscribe attempt failed transiently; trying again', {
        subscriptionId: record.subscriptionId,
        error: error.failure.toJSON(),
      });
      return undefined;
    }
  }

  /** Runs the remaining steps of a subscription this attempt holds the lease of. */
  private async run(
    start: SubscriptionRecord,
    owner: string,
    request: SubscribeRequest,
    material: KeyMaterial,
  ): Promise<SubscribeResult> {
    let record = start;
    const id = record.subscriptionId;
    let createdKeyId: string | undefined;
    // The catalog again, read consistently after the PENDING record is written, while the API Gateway
    // calls run (awaited before ACTIVE): a plan removal that listed the plan's subscriptions before that
    // write has removed the plan from the catalog by now (discovery lists them again after its catalog
    // writes, and revokes what this read still let through).
    const planCheck = this.planStillListed(record);
    planCheck.catch(() => undefined); // awaited below; never an unhandled rejection meanwhile
    try {
      await this.hook(SubscribeStep.PENDING, id);
      let apiKeyId = record.apiKeyId;
      while (!apiKeyId) {
        const value =
          record.keyMode === KeyMode.CUSTOM
            ? (request.apiKey as string)
            : material.deriveApiKey(id, record.keyGeneration);
        const created = await this.apiKeys.create(record, value);
        if (created === 'taken') {
          if (record.keyMode === KeyMode.CUSTOM) {
            throw new ConflictError(
              `An API key with the requested value already exists in ${record.accountId}/${record.region}: ` +
                'choose another value (if an earlier attempt of this subscription created it, that key is on no usage plan)',
            );
          }
          // The value of this generation is taken: an earlier attempt created the key and lost its
          // id (the documented policy cannot look it up). Move to the next generation's value.
          this.deps.logger?.warn('API key of an earlier attempt has an unknown id; deriving a new value', {
            subscriptionId: id,
            lostGeneration: record.keyGeneration,
          });
          const bumped = await this.deps.subscriptions.bumpKeyGeneration(id, owner, record.keyGeneration);
          if (!bumped) throw new LeaseLost();
          record = bumped;
          continue;
        }
        createdKeyId = created;
        await this.hook(SubscribeStep.API_KEY_CREATED, id, created);
        const recorded = await this.deps.subscriptions.recordKeyId(id, owner, created);
        if (!recorded) throw new LeaseLost();
        record = recorded;
        createdKeyId = undefined;
        apiKeyId = created;
      }
      await this.hook(SubscribeStep.KEY_ID_RECORDED, id, apiKeyId);
      await this.apiKeys.attach(record, apiKeyId);
      await this.hook(SubscribeStep.USAGE_PLAN_KEY_CREATED, id, apiKeyId);
      // Never ACTIVE on a removed plan: a removed plan fails the attempt here, and the compensation
      // deletes its key (which takes it off the usage plan too).
      await planCheck;
      const active = await this.deps.subscriptions.activate(id, owner, apiKeyId);
      if (!active) throw new LeaseLost();
      this.deps.logger?.info('subscription active', {
        subscriptionId: id,
        apiKeyId,
        usagePlanId: active.usagePlanId,
        accountId: active.accountId,
        region: active.region,
        attempt: active.attempt,
      });
      return this.answer(active, request, material);
    } catch (error) {
      if (error instanceof HookAbort) throw error.original;
      if (error instanceof LeaseLost) throw await this.onLeaseLost(id, createdKeyId);
      const failure = toFederationError(error, `Subscribe ${id}`);
      if (isTransient(failure)) {
        // Keep the progress (a recorded key id stays known), free the lease: a repeat continues. A
        // key created but not recorded (the ledger write failed) is deleted, unless the write did land.
        if (createdKeyId) await this.dropUnrecordedKey(id, createdKeyId);
        await this.deps.subscriptions.release(id, owner).catch(() => false);
        throw isRetryableNow(failure) ? new Retryable(failure) : failure;
      }
      await this.compensate(record, owner, failure, createdKeyId);
      throw failure;
    }
  }

  /**
   * A permanent failure (the usage plan or key is gone, a bad request, a taken custom value): delete
   * the key this subscription created, then mark it FAILED. If the deletion fails, the record stays
   * PENDING with its key id, so the ledger still knows the key and a repeat deals with it.
   */
  private async compensate(
    record: SubscriptionRecord,
    owner: string,
    failure: FederationError,
    unrecordedKeyId: string | undefined,
  ): Promise<void> {
    const keyId = record.apiKeyId ?? unrecordedKeyId;
    try {
      if (keyId) await this.apiKeys.delete(record, keyId);
    } catch (error) {
      this.deps.logger?.error('compensation failed: key kept on the PENDING record', {
        subscriptionId: record.subscriptionId,
        apiKeyId: keyId,
        error: toFederationError(error, 'DeleteApiKey').toJSON(),
      });
      await this.deps.subscriptions.release(record.subscriptionId, owner).catch(() => false);
      return;
    }
    await this.deps.subscriptions.fail(
      record.subscriptionId,
      owner,
      { code: failure.code, message: failure.message },
      { keyDeleted: true },
    );
    this.deps.logger?.warn('subscription failed', {
      subscriptionId: record.subscriptionId,
      error: failure.toJSON(),
      deletedApiKeyId: keyId,
    });
  }

  /**
   * This attempt lost its lease (it ran past it and another took over) or the subscription was
   * revoked under it. A key it created but could not record is deleted (nobody else knows it); a
   * revoked record with a live key gets that key deleted at once — its `keyDeleted` mark and event are
   * the hand-over's (`revoke-keys`, or `finish-revocations`), whose `DeleteApiKey` then finds it gone.
   * The caller is told to repeat.
   */
  private async onLeaseLost(
    subscriptionId: string,
    unrecordedKeyId: string | undefined,
  ): Promise<FederationError> {
    const record = await this.deps.subscriptions.get(subscriptionId);
    try {
      if (unrecordedKeyId && record) await this.apiKeys.delete(record, unrecordedKeyId);
      if (record?.status === SubscriptionStatus.REVOKED && record.apiKeyId && !record.keyDeleted) {
        await this.apiKeys.delete(record, record.apiKeyId);
      }
    } catch (error) {
      this.deps.logger?.error('cleanup after a lost lease failed', {
        subscriptionId,
        error: toFederationError(error, 'DeleteApiKey').toJSON(),
      });
    }
    if (record?.status === SubscriptionStatus.REVOKED) {
      return new ConflictError(`Subscription ${subscriptionId} was revoked while it was being created`);
    }
    return new BusyError(`Subscription ${subscriptionId} was taken over by another request: repeat it`);
  }

  /** Deletes a key this attempt created if the ledger does not hold its id (best effort). */
  private async dropUnrecordedKey(subscriptionId: string, apiKeyId: string): Promise<void> {
    try {
      const record = await this.deps.subscriptions.get(subscriptionId);
      if (record && record.apiKeyId !== apiKeyId) await this.apiKeys.delete(record, apiKeyId);
    } catch (error) {
      this.deps.logger?.error('could not delete an unrecorded key: it is on no usage plan', {
        subscriptionId,
        apiKeyId,
        error: toFederationError(error, 'DeleteApiKey').toJSON(),
      });
    }
  }
}
