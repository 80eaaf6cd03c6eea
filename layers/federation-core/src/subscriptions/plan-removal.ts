/**
 * Plan removal: when discovery sees a usage plan disappear from an API, the subscriptions of that plan
 * are revoked in the ledger and yield `subscription.revoked` events. Ledger only, no API Gateway call.
 */
import type { NewEvent } from '../ledger/outbox.js';
import { RevokeReason, type SubscriptionRepository } from '../ledger/subscriptions.js';
import { SubscriptionStatus } from '../model.js';
import { revokedEvent, type WithEvents } from './views.js';

export interface RemovedPlan {
  readonly accountId: string;
  readonly region: string;
  readonly usagePlanId: string;
  readonly apiId: string;
  readonly planId: string;
}

/**
 * Discovery saw a usage plan disappear from an API: every subscription of that API's plan is marked
 * REVOKED (reason PLAN_REMOVED), even one in flight, and yields a `subscription.revoked` event to
 * append to the outbox. Needs only the ledger: no API Gateway call, no key deleted (discovery's role
 * may not DELETE). The record keeps its key id with `keyDeleted: false`; the next `unsubscribe` of the
 * subscription deletes the key. A key whose usage plan is gone grants nothing meanwhile. Idempotent:
 * subscriptions already revoked yield nothing.
 */
export async function revokeForRemovedPlan(
  subscriptions: Pick<SubscriptionRepository, 'listByUsagePlan' | 'revoke'>,
  plan: RemovedPlan,
): Promise<WithEvents<{ subscriptionIds: string[] }>> {
  const records = await subscriptions.listByUsagePlan(plan.accountId, plan.region, plan.usagePlanId);
  const events: NewEvent[] = [];
  const subscriptionIds: string[] = [];
  for (const record of records) {
    if (record.apiId !== plan.apiId || record.planId !== plan.planId) continue;
    if (record.status === SubscriptionStatus.REVOKED) continue;
    const revoked = await subscriptions.revoke(
      record.subscriptionId,
      [SubscriptionStatus.ACTIVE, SubscriptionStatus.PENDING, SubscriptionStatus.FAILED],
      RevokeReason.PLAN_REMOVED,
      { force: true },
    );
    if (!revoked) continue;
    subscriptionIds.push(revoked.subscriptionId);
    events.push(revokedEvent(revoked));
  }
  return { result: { subscriptionIds }, events };
}
