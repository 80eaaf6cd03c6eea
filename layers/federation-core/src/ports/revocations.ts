/**
 * The revocation port: how discovery, which sees usage plans disappear, has the subscriptions of a
 * removed plan revoked without importing the subscriptions capability. The composition root wires it
 * (today: the subscriptions capability's ledger revocation, in process; the subscriptions function
 * can be reached through the invoke port, `SubscriptionsFunction`, instead).
 */
import type { NewEvent } from '../ledger/outbox.js';

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
