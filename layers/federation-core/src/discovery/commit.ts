/**
 * The commit of one account-region's run, in the order that keeps the control plane and the ledger
 * consistent through a crash at any point: lease renewed → events appended to the outbox →
 * revocations applied → catalog written. An event is never lost (a crash after the append repeats it
 * on the next run, since the catalog still shows the old state) and a run that lost its lease
 * publishes nothing the new holder also publishes.
 */
import { BusyError } from '../errors.js';
import type { CatalogRepository } from '../ledger/catalog.js';
import type { LeaseRepository } from '../ledger/lease.js';
import type { NewEvent, Outbox, OutboxEvent } from '../ledger/outbox.js';
import { EventType } from '../model.js';
import { mapPool } from '../pool.js';
import type { PlanRevocations } from '../ports/revocations.js';
import type { CatalogDiff } from './diff.js';

/** Catalog writes in flight at the end of a run (DynamoDB on-demand absorbs far more). */
const CATALOG_WRITE_CONCURRENCY = 16;
/** Subscription ids one `plan.removed` event lists (1,000 × 128 characters ≈ 130 KB). */
const PLAN_REMOVED_IDS_MAX = 1000;

export interface CommitDeps {
  readonly catalog: Pick<CatalogRepository, 'putApi' | 'deleteApi'>;
  readonly outbox: Pick<Outbox, 'append' | 'releaseHold'>;
  readonly leases: Pick<LeaseRepository, 'renew'>;
  readonly revocations: PlanRevocations;
}

export interface CommitInput {
  readonly accountId: string;
  readonly region: string;
  readonly diff: CatalogDiff;
  readonly lease: { readonly name: string; readonly owner: string; readonly ttlMs: number };
}

/** The events appended, or the BusyError of a lease lost before anything was written. */
export type CommitOutcome = { readonly events: OutboxEvent[] } | { readonly leaseLost: BusyError };

export async function commitDiscovery(deps: CommitDeps, input: CommitInput): Promise<CommitOutcome> {
  const { accountId, region, diff, lease } = input;
  // What each removed plan revokes is computed once (the revocation port): the same subscriptions are
  // listed in `plan.removed`, get a `subscription.revoked` event, and are revoked after the append.
  const removedPlans = diff.removedPlans.map(({ api, plan }) => ({
    accountId,
    region,
    usagePlanId: plan.usagePlanId,
    apiId: api.id,
    planId: plan.id,
  }));
  const revocations = await deps.revocations.prepare(removedPlans);
  const events: NewEvent[] = diff.upserted.map((api) => ({ event: EventType.API_UPSERTED, payload: api }));
  for (const { plan, subscriptionIds, events: revoked } of revocations) {
    // One event per PLAN_REMOVED_IDS_MAX subscriptions (ids are up to 128 characters): each stays far
    // below DynamoDB's 400 KB item limit; `part` / `parts` say how the list was split.
    const parts = Math.max(1, Math.ceil(subscriptionIds.length / PLAN_REMOVED_IDS_MAX));
    for (let part = 0; part < parts; part++) {
      events.push({
        event: EventType.PLAN_REMOVED,
        payload: {
          apiId: plan.apiId,
          planId: plan.planId,
          usagePlanId: plan.usagePlanId,
          subscriptionIds: subscriptionIds.slice(
            part * PLAN_REMOVED_IDS_MAX,
            (part + 1) * PLAN_REMOVED_IDS_MAX,
          ),
          ...(parts > 1 ? { part: part + 1, parts } : {}),
        },
      });
    }
    events.push(...revoked);
  }
  for (const api of diff.removed) {
    events.push({ event: EventType.API_REMOVED, payload: { id: api.id, source: api.source } });
  }

  // 1. A run that lost its lease (ran past its TTL) must not publish what the new holder publishes.
  if (events.length > 0 && !(await deps.leases.renew(lease.name, lease.owner, lease.ttlMs))) {
    return { leaseLost: new BusyError(`lease ${lease.name} lost before publishing`) };
  }
  // 2. The outbox first (at least once). The hold keeps a snapshot's cursor before these events until
  // the catalog holds their changes (step 4): a control plane that takes a snapshot meanwhile replays
  // them with its next sync.
  const hold = { id: `discovery#${accountId}/${region}`, ttlMs: lease.ttlMs };
  const appended = await deps.outbox.append(events, { hold });
  // 3. The ledger changes after the events are appended: a crash in between repeats the events on
  // the next run instead of losing them (revocation skips records that are already REVOKED).
  await deps.revocations.commit(revocations);
  // 4. Catalog items are independent of each other (the events are already in the outbox): write
  // them concurrently, or a large first run spends seconds after its last API call.
  await mapPool(diff.upserted, CATALOG_WRITE_CONCURRENCY, (api) => deps.catalog.putApi(api));
  await mapPool(diff.removed, CATALOG_WRITE_CONCURRENCY, (api) => deps.catalog.deleteApi(api.id));
  // 5. Second pass, now that the catalog no longer lists the removed plans: a subscribe re-checks the
  // catalog after writing its PENDING record, so one that still saw the plan wrote that record before
  // the catalog writes above — and a consistent read (not the index) finds it here. Same order: the
  // events first, then the ledger.
  if (removedPlans.length > 0) {
    const late = (await deps.revocations.prepare(removedPlans, { consistent: true })).map((revocation) => ({
      ...revocation,
      keysToDelete: revocation.subscriptionIds, // the others were handed over with the first pass
    }));
    const lateEvents = late.flatMap((revocation) => revocation.events);
    if (lateEvents.length > 0) {
      appended.push(...(await deps.outbox.append(lateEvents, { hold })));
      await deps.revocations.commit(late);
    }
  }
  if (appended.length > 0) await deps.outbox.releaseHold(hold.id);
  return { events: appended };
}
