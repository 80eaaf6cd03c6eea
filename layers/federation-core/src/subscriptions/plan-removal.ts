/**
 * Plan removal: when discovery sees a usage plan disappear from an API, the subscriptions of that plan
 * are revoked in the ledger and yield `subscription.revoked` events. Ledger only, no API Gateway call.
 * Discovery reaches this through the revocation port (`ports/revocations.ts`), wired by the
 * composition root: {@link ledgerPlanRevocations}.
 */
import type { NewEvent } from '../ledger/outbox.js';
import { SubscriptionStatus } from '../model.js';
import { mapPool } from '../pool.js';
import type { PlanRevocation, PlanRevocations, RemovedPlan } from '../ports/revocations.js';
import { RevokeReason, type SubscriptionRecord, type SubscriptionRepository } from './repository.js';
import { revokedEvent, type WithEvents } from './views.js';

export type { RemovedPlan } from '../ports/revocations.js';

/** Revocations written at a time. */
const REVOKE_CONCURRENCY = 16;

type PlanRemovalLedger = Pick<
  SubscriptionRepository,
  'listByUsagePlan' | 'listByUsagePlansConsistent' | 'revoke'
>;

/**
 * The one filter of a plan removal: the subscriptions of that API's plan that are live (ACTIVE, or
 * PENDING: even one in flight). REVOKED ones are done; a FAILED one holds no key on the plan and the
 * control plane never had it.
 */
function isRevokedByRemoval(record: SubscriptionRecord, plan: RemovedPlan): boolean {
  return (
    record.apiId === plan.apiId &&
    record.planId === plan.planId &&
    (record.status === SubscriptionStatus.ACTIVE || record.status === SubscriptionStatus.PENDING)
  );
}

/** A subscription of that API's plan already REVOKED whose key is not deleted yet. */
function hasKeyToDelete(record: SubscriptionRecord, plan: RemovedPlan): boolean {
  return (
    record.apiId === plan.apiId &&
    record.planId === plan.planId &&
    record.status === SubscriptionStatus.REVOKED &&
    record.keyDeleted !== true &&
    record.apiKeyId !== undefined
  );
}

/**
 * The revocation port over the ledger. `prepare` lists each usage plan once and computes, with one
 * filter, the subscriptions each removal revokes and their events; `commit` revokes exactly those.
 * Needs only the ledger: no API Gateway call, no key deleted (discovery's role may not DELETE). The
 * record keeps its key id with `keyDeleted: false` and the subscription is listed in `keysToDelete`:
 * the composition root hands those to the subscriptions function (`handingKeysTo`,
 * `ports/revocations.ts`), which deletes the keys — an API that left the catalog by a tag edit or a
 * filter still has its usage plan, on which the key would go on working.
 */
export function ledgerPlanRevocations(subscriptions: PlanRemovalLedger): PlanRevocations {
  return {
    prepare: async (plans, options = {}) => {
      const byUsagePlan = new Map<string, Promise<SubscriptionRecord[]>>();
      const consistent = options.consistent ? consistentListing(subscriptions, plans) : undefined;
      const listed = (plan: RemovedPlan) => {
        const key = `${plan.accountId}/${plan.region}/${plan.usagePlanId}`;
        let list = byUsagePlan.get(key);
        if (!list) {
          list = consistent
            ? consistent.then((all) =>
                all.filter(
                  (r) =>
                    r.accountId === plan.accountId &&
                    r.region === plan.region &&
                    r.usagePlanId === plan.usagePlanId,
                ),
              )
            : subscriptions.listByUsagePlan(plan.accountId, plan.region, plan.usagePlanId);
          byUsagePlan.set(key, list);
        }
        return list;
      };
      const out: PlanRevocation[] = [];
      for (const plan of plans) {
        const affected = (await listed(plan))
          .filter((record) => isRevokedByRemoval(record, plan))
          .sort((a, b) => a.subscriptionId.localeCompare(b.subscriptionId));
        const keyStillThere = (await listed(plan)).filter((record) => hasKeyToDelete(record, plan));
        out.push({
          plan,
          subscriptionIds: affected.map((s) => s.subscriptionId),
          events: affected.map((s) => revokedEvent({ ...s, revokeReason: RevokeReason.PLAN_REMOVED })),
          keysToDelete: [...affected, ...keyStillThere].map((s) => s.subscriptionId).sort(),
        });
      }
      return out;
    },
    commit: async (revocations) => {
      for (const revocation of revocations) await revokeListed(subscriptions, revocation.subscriptionIds);
    },
  };
}

/**
 * The subscriptions on the removed plans' usage plans, read consistently: one Scan per account-region
 * (plan removals are rare, and a run's second pass covers one account-region).
 */
async function consistentListing(
  subscriptions: PlanRemovalLedger,
  plans: readonly RemovedPlan[],
): Promise<SubscriptionRecord[]> {
  const byTarget = new Map<string, { accountId: string; region: string; usagePlanIds: Set<string> }>();
  for (const plan of plans) {
    const key = `${plan.accountId}/${plan.region}`;
    const target = byTarget.get(key) ?? {
      accountId: plan.accountId,
      region: plan.region,
      usagePlanIds: new Set(),
    };
    target.usagePlanIds.add(plan.usagePlanId);
    byTarget.set(key, target);
  }
  const lists = await Promise.all(
    [...byTarget.values()].map((t) =>
      subscriptions.listByUsagePlansConsistent(t.accountId, t.region, [...t.usagePlanIds]),
    ),
  );
  return lists.flat();
}

/** Marks the subscriptions REVOKED (reason PLAN_REMOVED), even one in flight; returns those it changed. */
async function revokeListed(
  subscriptions: PlanRemovalLedger,
  subscriptionIds: readonly string[],
): Promise<SubscriptionRecord[]> {
  // A few conditional writes at a time (a plan can have thousands of subscriptions); input order kept.
  const revoked = await mapPool(subscriptionIds, REVOKE_CONCURRENCY, (subscriptionId) =>
    subscriptions.revoke(
      subscriptionId,
      [SubscriptionStatus.ACTIVE, SubscriptionStatus.PENDING, SubscriptionStatus.FAILED],
      RevokeReason.PLAN_REMOVED,
      { force: true },
    ),
  );
  return revoked.filter((r): r is SubscriptionRecord => r !== undefined);
}

/**
 * Discovery saw a usage plan disappear from an API: prepare and commit in one call, answering the
 * subscriptions this call revoked and their `subscription.revoked` events. Idempotent: subscriptions
 * already revoked yield nothing.
 */
export async function revokeForRemovedPlan(
  subscriptions: PlanRemovalLedger,
  plan: RemovedPlan,
): Promise<WithEvents<{ subscriptionIds: string[] }>> {
  const [prepared] = await ledgerPlanRevocations(subscriptions).prepare([plan]);
  const revoked = await revokeListed(subscriptions, prepared?.subscriptionIds ?? []);
  const events: NewEvent[] = revoked.map(revokedEvent);
  return { result: { subscriptionIds: revoked.map((r) => r.subscriptionId) }, events };
}
