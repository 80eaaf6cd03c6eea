/**
 * The revocation port: how discovery, which sees usage plans disappear, has the subscriptions of a
 * removed plan revoked without importing the subscriptions capability. The composition root wires it:
 * the subscriptions capability's ledger revocation, in process, then {@link handingKeysTo} the
 * subscriptions function (the role that may DELETE) through the invoke port: an asynchronous
 * `revoke-keys` invoke, retried by Lambda, with a dead-letter queue.
 */
import type { NewEvent } from '../ledger/outbox.js';
import { mapPool } from '../pool.js';
import { MAX_REVOKE_KEYS_IDS, type RevokeKeysRequest } from '../protocol/requests.js';
import type { FunctionPort } from './functions.js';

/** A usage plan that left an API of the catalog. */
export interface RemovedPlan {
  readonly accountId: string;
  readonly region: string;
  readonly usagePlanId: string;
  readonly apiId: string;
  readonly planId: string;
}

/** What the removal of one plan revokes: computed once, appended, then applied. */
export interface PlanRevocation {
  readonly plan: RemovedPlan;
  /** The subscriptions revoked, in subscription id order (the `plan.removed` event lists them). */
  readonly subscriptionIds: readonly string[];
  /** One `subscription.revoked` event per subscription, in the same order. */
  readonly events: readonly NewEvent[];
  /**
   * The subscriptions whose API key is still to be deleted once revoked: those revoked now, and those
   * of the same plan already REVOKED whose key is not yet deleted (a handover a crash lost).
   */
  readonly keysToDelete: readonly string[];
}

/**
 * Two steps, so the events reach the outbox before the ledger changes (a crash in between repeats
 * the events on the next run instead of losing them).
 */
export interface PlanRevocations {
  /**
   * Reads only: which subscriptions each removed plan revokes, and their events. `consistent`: read
   * the ledger consistently (not through the eventually consistent usage-plan index): discovery's
   * second pass after its catalog writes, which finds a subscribe's PENDING record written a moment
   * before the catalog stopped listing the plan.
   */
  prepare(
    plans: readonly RemovedPlan[],
    options?: { readonly consistent?: boolean },
  ): Promise<PlanRevocation[]>;
  /** Writes, after the events are in the outbox: revokes exactly the prepared subscriptions. Idempotent. */
  commit(revocations: readonly PlanRevocation[]): Promise<void>;
}

/** `revoke-keys` invocations queued at once. */
const HANDOVER_CONCURRENCY = 4;

/**
 * `revocations`, whose `commit` then hands the keys to delete to the subscriptions function: one
 * asynchronous `{ action: 'revoke-keys', subscriptionIds }` per {@link MAX_REVOKE_KEYS_IDS} ids. After
 * the ledger revocation (the subscriptions function deletes only keys of REVOKED records) and before
 * discovery writes the catalog: a crash before the invokes were queued repeats the removal on the next
 * run, whose `prepare` lists the same keys again (`keysToDelete`). Once queued, Lambda retries a failed
 * invocation and keeps the last failure in the function's dead-letter queue; repeats are harmless.
 */
export function handingKeysTo(
  revocations: PlanRevocations,
  subscriptionsFunction: Pick<FunctionPort, 'send'>,
): PlanRevocations {
  return {
    prepare: (plans, options) => revocations.prepare(plans, options),
    commit: async (prepared) => {
      await revocations.commit(prepared);
      const ids = [...new Set(prepared.flatMap((revocation) => revocation.keysToDelete))];
      const chunks: string[][] = [];
      for (let i = 0; i < ids.length; i += MAX_REVOKE_KEYS_IDS)
        chunks.push(ids.slice(i, i + MAX_REVOKE_KEYS_IDS));
      await mapPool(chunks, HANDOVER_CONCURRENCY, (subscriptionIds) =>
        subscriptionsFunction.send({
          action: 'revoke-keys',
          subscriptionIds,
        } satisfies RevokeKeysRequest & { action: 'revoke-keys' }),
      );
    },
  };
}
