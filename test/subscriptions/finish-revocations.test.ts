/**
 * Revoked means revoked, without an operator: `finish-revocations` (the subscriptions function's hourly
 * schedule) deletes the keys of revocations whose own deletion was lost — a plan removal whose
 * `revoke-keys` hand-over never ran or ended in the dead-letter queue, an unsubscribe whose
 * `DeleteApiKey` failed and was never repeated. They are listed through the ledger's sparse gsi2 (set
 * with the revocation, removed with `keyDeleted`), in moto, with API Gateway behind the fidelity proxy
 * under the documented POST + DELETE statements.
 */
import { describe, expect, it } from 'vitest';
import {
  FINISH_REVOCATIONS_AFTER_MS,
  type SubscriptionService,
} from '../../layers/federation-core/src/index.js';
import type { Emulator } from '../support/emulator.js';
import { allKeys, codeOf, goldRequest, type World, withEmulatorWorld } from './support.js';

describe('finish-revocations', () => {
  let emu: Emulator;
  let world: World;
  let service: SubscriptionService;
  /** The same service an hour later: every revocation so far is past the hand-over's time. */
  let later: SubscriptionService;

  withEmulatorWorld((started, built) => {
    emu = started;
    world = built;
    service = world.service();
    later = world.service({ now: () => Date.now() + FINISH_REVOCATIONS_AFTER_MS + 60_000 });
  });

  /** Revokes the gold plan's subscriptions in the ledger only: the hand-over of their keys is lost. */
  const removeGoldWithoutHandOver = () =>
    service.revokeForRemovedPlan({
      accountId: emu.accountId,
      region: emu.region,
      usagePlanId: world.seeded.usagePlans.gold!.usagePlanId,
      apiId: world.apis.pets.id,
      planId: world.plans.gold,
    });

  const revokedEvents = async () =>
    (await world.outbox.listAfter(0)).filter((e) => e.event === 'subscription.revoked').map((e) => e.payload);

  const pending = async () =>
    (await world.repo.listKeysToDelete(new Date(Date.now() + 86_400_000).toISOString(), 100)).subscriptionIds;

  it('deletes the key of a plan removal whose hand-over was lost, once', async () => {
    const sub = await service.subscribe(goldRequest(world));
    await removeGoldWithoutHandOver();
    expect(await pending()).toEqual(['sub-1']);
    // Within the hand-over's own time it is left alone.
    expect(await service.finishRevocations({}, world.emit)).toEqual({
      deleted: [],
      alreadyDeleted: [],
      skipped: [],
      failed: [],
      more: false,
    });
    expect((await allKeys(world.raw)).map((k) => k.id)).toEqual([sub.apiKeyId]);

    expect(await later.finishRevocations({}, world.emit)).toMatchObject({ deleted: ['sub-1'], more: false });
    expect(await allKeys(world.raw)).toEqual([]);
    expect(await world.repo.get('sub-1')).toMatchObject({
      status: 'REVOKED',
      revokeReason: 'PLAN_REMOVED',
      keyDeleted: true,
    });
    expect(await revokedEvents()).toEqual([
      expect.objectContaining({ subscriptionId: 'sub-1', reason: 'PLAN_REMOVED', keyDeleted: true }),
    ]);
    expect(await pending()).toEqual([]);
    // The next hour finds nothing to do.
    emu.proxy.resetCalls();
    expect(await later.finishRevocations({}, world.emit)).toMatchObject({ deleted: [], more: false });
    expect(emu.proxy.calls.count({ service: 'apigateway' })).toBe(0);
  });

  it('deletes the key of an unsubscribe whose DeleteApiKey failed and was never repeated', async () => {
    await service.subscribe(goldRequest(world));
    emu.proxy.setFaults({ seed: 7, rates: { error500: 1 }, operations: ['DeleteApiKey'] });
    expect(await codeOf(service.unsubscribe({ subscriptionId: 'sub-1' }, world.emit))).toBe('AWS_ERROR');
    emu.proxy.setFaults(undefined);
    expect(await allKeys(world.raw)).toHaveLength(1);
    expect(await later.finishRevocations({}, world.emit)).toMatchObject({ deleted: ['sub-1'] });
    expect(await allKeys(world.raw)).toEqual([]);
    expect(await revokedEvents()).toEqual([
      expect.objectContaining({ subscriptionId: 'sub-1', reason: 'UNSUBSCRIBED', keyDeleted: true }),
    ]);
    // A late repeat of the unsubscribe answers the same and appends nothing.
    expect((await service.unsubscribe({ subscriptionId: 'sub-1' }, world.emit)).events).toEqual([]);
  });

  it('reports a key it cannot delete now, and deletes it on the next call', async () => {
    await service.subscribe(goldRequest(world));
    await removeGoldWithoutHandOver();
    emu.proxy.setFaults({ seed: 8, rates: { error500: 1 }, operations: ['DeleteApiKey'] });
    expect(await later.finishRevocations({}, world.emit)).toMatchObject({ deleted: [], failed: ['sub-1'] });
    emu.proxy.setFaults(undefined);
    expect(await world.repo.get('sub-1')).toMatchObject({ keyDeleted: false });
    expect(await pending()).toEqual(['sub-1']);
    expect(await later.finishRevocations({}, world.emit)).toMatchObject({ deleted: ['sub-1'], failed: [] });
    expect(await allKeys(world.raw)).toEqual([]);
  });

  it('takes at most `limit`, oldest revocation first, and says more wait', async () => {
    for (const id of ['sub-c', 'sub-a', 'sub-b']) {
      await service.subscribe(goldRequest(world, { subscriptionId: id }));
      await service
        .unsubscribe({ subscriptionId: id }, async () => {
          throw new Error('the event cannot be appended'); // the key is gone, the mark is not written
        })
        .catch(() => undefined);
    }
    expect(await later.finishRevocations({ limit: 2 }, world.emit)).toMatchObject({
      deleted: ['sub-c', 'sub-a'],
      more: true,
    });
    expect(await later.finishRevocations({ limit: 2 }, world.emit)).toMatchObject({
      deleted: ['sub-b'],
      more: false,
    });
  });

  it('stops taking revocations when its invocation runs out of time, and says more wait', async () => {
    await service.subscribe(goldRequest(world));
    await removeGoldWithoutHandOver();
    // No time left (the function's remaining time, less a reserve, is spent).
    expect(await later.finishRevocations({}, world.emit, { withinMs: 0 })).toMatchObject({
      deleted: [],
      more: true,
    });
    expect(await allKeys(world.raw)).toHaveLength(1);
    expect(await later.finishRevocations({}, world.emit, { withinMs: 60_000 })).toMatchObject({
      deleted: ['sub-1'],
      more: false,
    });
  });

  it('never touches a live subscription, and refuses a malformed request before any AWS call', async () => {
    const sub = await service.subscribe(goldRequest(world));
    expect(await later.finishRevocations({}, world.emit)).toMatchObject({ deleted: [], skipped: [] });
    expect((await allKeys(world.raw)).map((k) => k.id)).toEqual([sub.apiKeyId]);
    emu.proxy.resetCalls();
    for (const bad of [{ limit: 0 }, { limit: 201 }, { limit: 1.5 }, { extra: true }]) {
      expect(await codeOf(later.finishRevocations(bad, world.emit))).toBe('VALIDATION');
    }
    expect(emu.proxy.calls.count()).toBe(0);
  });
});
