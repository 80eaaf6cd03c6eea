/**
 * What the subscriptions core shows outward about a ledger record: the `get` view (never a key value,
 * hash or lease) and the `subscription.revoked` event.
 */
import type { NewEvent, OutboxEvent, OutboxGuard } from '../ledger/outbox.js';
import { EventType } from '../model.js';
import { RevokeReason, type SubscriptionRecord } from './repository.js';

/** A subscription as `get` shows it: the ledger record without key value, hashes, role or lease. */
export type SubscriptionView = Pick<
  SubscriptionRecord,
  | 'subscriptionId'
  | 'status'
  | 'apiId'
  | 'planId'
  | 'usagePlanId'
  | 'accountId'
  | 'region'
  | 'application'
  | 'apiKeyId'
  | 'keyMode'
  | 'createdAt'
  | 'updatedAt'
  | 'activatedAt'
  | 'revokedAt'
  | 'revokeReason'
  | 'keyDeleted'
  | 'keyDeletedAt'
  | 'failure'
  | 'sweptAt'
  | 'sweptKeys'
> & {
  /** Attempts that took the lease (the record's `attempt`). */
  readonly attempts: number;
  /** Keys created by attempts whose `CreateApiKey` answer was lost: on no usage plan, id unknown. */
  readonly lostKeys: number;
};

/** What `revokeForRemovedPlan` hands back: the answer and the events to append. */
export interface WithEvents<T> {
  readonly result: T;
  readonly events: NewEvent[];
}

/**
 * How the service appends the events of a change it makes with them (the outbox's append, then the
 * relay): the guard's write commits in the events' transaction, and `[]` comes back when the guard says
 * the change was made before.
 */
export type EmitEvents = (
  events: NewEvent[],
  options?: { guard?: OutboxGuard },
) => Promise<readonly OutboxEvent[]>;

/** The public view of a record: no key value, no hash, no lease. */
export function toView(record: SubscriptionRecord): SubscriptionView {
  return {
    subscriptionId: record.subscriptionId,
    status: record.status,
    apiId: record.apiId,
    planId: record.planId,
    usagePlanId: record.usagePlanId,
    accountId: record.accountId,
    region: record.region,
    application: { id: record.application.id, name: record.application.name },
    ...(record.apiKeyId ? { apiKeyId: record.apiKeyId } : {}),
    keyMode: record.keyMode,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    ...(record.activatedAt ? { activatedAt: record.activatedAt } : {}),
    ...(record.revokedAt ? { revokedAt: record.revokedAt } : {}),
    ...(record.revokeReason ? { revokeReason: record.revokeReason } : {}),
    ...(record.keyDeleted !== undefined ? { keyDeleted: record.keyDeleted } : {}),
    ...(record.keyDeletedAt ? { keyDeletedAt: record.keyDeletedAt } : {}),
    ...(record.failure ? { failure: record.failure } : {}),
    attempts: record.attempt,
    lostKeys: record.lostKeyGenerations?.length ?? 0,
    ...(record.sweptAt ? { sweptAt: record.sweptAt } : {}),
    ...(record.sweptKeys !== undefined ? { sweptKeys: record.sweptKeys } : {}),
  };
}

/** The `subscription.revoked` event of a revoked record. */
export function revokedEvent(record: SubscriptionRecord): NewEvent {
  return {
    event: EventType.SUBSCRIPTION_REVOKED,
    payload: {
      subscriptionId: record.subscriptionId,
      apiId: record.apiId,
      planId: record.planId,
      reason: record.revokeReason ?? RevokeReason.UNSUBSCRIBED,
      keyDeleted: record.keyDeleted === true,
      ...(record.keyDeleted === true && record.keyDeletedAt ? { keyDeletedAt: record.keyDeletedAt } : {}),
    },
  };
}
