/**
 * Revoked means revoked (issue 15.2): when an API leaves the catalog while its REST API, stage and usage
 * plan still exist (a tag edit under a label filter), or its usage plan is deleted, discovery revokes
 * the subscriptions in the ledger and hands their keys to the subscriptions function (an asynchronous
 * `revoke-keys` invoke through the local Lambda endpoint, retried as deployed), which deletes them. The
 * key no longer exists in API Gateway and the control plane is told so (`keyDeleted: true`).
 */
import {
  DeleteUsagePlanCommand,
  TagResourceCommand,
  UpdateUsagePlanCommand,
} from '@aws-sdk/client-api-gateway';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  EventType,
  type OutboxEvent,
  RevokeKeysStep,
  type SubscriptionHooks,
} from '../../layers/federation-core/src/index.js';
import { apiKeyExists, type Emulator, startEmulator } from '../support/emulator.js';
import { type RelayHarness, startRelayHarness, TEST_AGENT } from '../support/relay-harness.js';

describe('revoked means revoked: discovery hands the keys of revoked subscriptions to the subscriptions function', () => {
  let emu: Emulator;
  let agent: RelayHarness | undefined;

  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
  });
  afterAll(async () => {
    await emu?.stop();
  });

  /** The agent with a label filter (`retired` APIs are not federated), discovered once, and `sub-1` on pets/gold. */
  const subscribed = async (hooks?: SubscriptionHooks) => {
    agent = await startRelayHarness(emu, {
      ...TEST_AGENT,
      discovery: { ...TEST_AGENT.discovery, labels: { include: [], exclude: ['retired'] } },
      ...(hooks ? { subscriptionHooks: hooks } : {}),
    });
    await agent.discovery.engine.run();
    const pets = (await agent.discovery.catalog.listAll()).find((api) => api.name === 'Pets');
    const gold = pets?.plans.find((plan) => plan.name === 'Gold');
    expect(gold, 'pets is federated with its gold plan').toBeDefined();
    const active = await agent.subscriptions.service.subscribe({
      subscriptionId: 'sub-1',
      apiId: pets!.id,
      planId: gold!.id,
      application: { id: 'app-1', name: 'App one' },
    });
    expect(await keyExists(active.apiKeyId)).toBe(true);
    return { active, pets: pets!, since: await agent.relay.outbox.latestSeq() };
  };

  const keyExists = (apiKeyId: string) => apiKeyExists(emu, apiKeyId);

  /** `subscription.revoked` events of `sub-1` appended after `since`. */
  const revokedEvents = async (since: number): Promise<OutboxEvent[]> =>
    (await agent!.relay.outbox.listAfter(since, 100)).filter(
      (e) =>
        e.event === EventType.SUBSCRIPTION_REVOKED &&
        (e.payload as { subscriptionId?: string }).subscriptionId === 'sub-1',
    );

  /** A discovery run, then every asynchronous invocation it queued (revoke-keys and its retries). */
  const discoverAndSettle = async () => {
    const { summary } = await agent!.discovery.engine.run();
    await agent!.idle();
    return summary;
  };

  const expectKeyGone = async (apiKeyId: string, since: number) => {
    expect(await keyExists(apiKeyId), 'GetApiKey answers 404').toBe(false);
    const record = await agent!.subscriptions.service.get({ subscriptionId: 'sub-1' });
    expect(record).toMatchObject({ status: 'REVOKED', revokeReason: 'PLAN_REMOVED', keyDeleted: true });
    expect(record.keyDeletedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    const events = await revokedEvents(since);
    // Discovery's (the ledger revoked it, the key still to go), then the subscriptions function's.
    expect(events.map((e) => (e.payload as { keyDeleted?: boolean }).keyDeleted)).toEqual([false, true]);
    expect(events[1]!.payload).toMatchObject({
      subscriptionId: 'sub-1',
      reason: 'PLAN_REMOVED',
      keyDeleted: true,
      keyDeletedAt: record.keyDeletedAt,
    });
    expect(agent!.handlerErrors).toEqual([]);
  };

  it('deletes the key when a tag edit takes the API out of the catalog (its usage plan still there)', async () => {
    const { active, pets, since } = await subscribed();
    const arn = `arn:aws:apigateway:${emu.region}::/restapis/${pets.source.restApiId}`;
    await emu
      .apiGateway({ via: 'proxy' })
      .send(new TagResourceCommand({ resourceArn: arn, tags: { retired: 'yes' } }));
    const summary = await discoverAndSettle();
    expect(summary.counts).toMatchObject({ removed: 1, plansRemoved: 1 });
    await expectKeyGone(active.apiKeyId, since);
  });

  it('deletes the key when its usage plan is deleted', async () => {
    const { active, pets, since } = await subscribed();
    const gw = emu.apiGateway({ via: 'moto' });
    await gw.send(
      new UpdateUsagePlanCommand({
        usagePlanId: active.usagePlanId,
        patchOperations: [{ op: 'remove', path: '/apiStages', value: `${pets.source.restApiId}:prod` }],
      }),
    );
    await gw.send(new DeleteUsagePlanCommand({ usagePlanId: active.usagePlanId }));
    const summary = await discoverAndSettle();
    expect(summary.counts.plansRemoved).toBe(1);
    await expectKeyGone(active.apiKeyId, since);
  });

  it('converges when the subscriptions function crashes between DeleteApiKey and the ledger write (Lambda retries)', async () => {
    let crashes = 0;
    const { active, pets, since } = await subscribed({
      afterStep: (step) => {
        if (step === RevokeKeysStep.KEY_DELETED && crashes++ === 0)
          throw new Error('crash after DeleteApiKey');
      },
    });
    const arn = `arn:aws:apigateway:${emu.region}::/restapis/${pets.source.restApiId}`;
    await emu
      .apiGateway({ via: 'proxy' })
      .send(new TagResourceCommand({ resourceArn: arn, tags: { retired: 'yes' } }));
    await discoverAndSettle();
    // The first attempt deleted the key and died; the retry found it gone (404) and finished.
    expect(crashes).toBe(2);
    await expectKeyGone(active.apiKeyId, since);
    // A repeat (a duplicate delivery, or an operator) changes nothing and says nothing again.
    const again = await agent!.handlers.subscriptions({ action: 'revoke-keys', subscriptionIds: ['sub-1'] });
    expect(again).toEqual({ deleted: [], alreadyDeleted: ['sub-1'], skipped: [] });
    expect(await revokedEvents(since)).toHaveLength(2);
  });

  it('never deletes the key of a live subscription, and refuses a malformed request before any AWS call', async () => {
    const { active } = await subscribed();
    const handler = agent!.handlers.subscriptions;
    expect(await handler({ action: 'revoke-keys', subscriptionIds: ['sub-1', 'nobody'] })).toEqual({
      deleted: [],
      alreadyDeleted: [],
      skipped: ['sub-1', 'nobody'],
    });
    expect(await keyExists(active.apiKeyId)).toBe(true);
    emu.proxy.resetCalls();
    await expect(handler({ action: 'revoke-keys', subscriptionIds: [] })).rejects.toThrow(/^VALIDATION/);
    await expect(handler({ action: 'revoke-keys', subscriptionIds: ['x'], extra: 1 })).rejects.toThrow(
      /^VALIDATION/,
    );
    expect(emu.proxy.calls.count({ service: 'apigateway' })).toBe(0);
  });
});
