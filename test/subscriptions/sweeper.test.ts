/**
 * The opt-in lost-key sweeper against the emulator: lost `CreateApiKey` answers are made for real (a
 * hook throwing right after `CreateApiKey` answered is exactly a lost response), then the sweeper runs
 * behind the fidelity proxy under the documented POST + DELETE statements plus the opt-in GET.
 */
import { CreateApiKeyCommand, DeleteApiKeyCommand } from '@aws-sdk/client-api-gateway';
import { describe, expect, it } from 'vitest';
import { createSubscriptionsHandler } from '../../functions/subscriptions/handler.js';
import { OPT_IN_STATEMENTS } from '../../infra/iam/documented-policy.js';
import {
  FederationError,
  noRelay,
  RateLimiterRegistry,
  revokeForRemovedPlan,
  SubscribeStep,
  type SubscriptionService,
  type SweeperDeps,
  type SweepResult,
  sweepLostKeys,
} from '../../layers/federation-core/src/index.js';
import type { Emulator } from '../support/emulator.js';
import {
  allKeys,
  keysOnPlan,
  SUBSCRIPTIONS_POLICY,
  sleep,
  TABLE,
  type World,
  withEmulatorWorld,
} from './support.js';

const app = { id: 'app-42', name: 'Mobile app' };

/** The documented POST + DELETE statements plus the opt-in GET /apikeys (what `sweepLostKeys: true` grants). */
const SWEEPER_POLICY = {
  Version: '2012-10-17',
  Statement: [
    ...SUBSCRIPTIONS_POLICY.Statement,
    {
      Effect: 'Allow' as const,
      Action: [...OPT_IN_STATEMENTS.sweepLostKeys.Action],
      Resource: [...OPT_IN_STATEMENTS.sweepLostKeys.Resource],
    },
  ],
};

async function codeOf(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof FederationError) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected a FederationError, got a result');
}

describe('lost-key sweeper against the emulator', () => {
  let emu: Emulator;
  let world: World;
  let service: SubscriptionService;
  let deps: SweeperDeps;

  withEmulatorWorld((started, built) => {
    emu = started;
    world = built;
    service = world.service();
    deps = {
      enabled: true,
      // Through the proxy too, so "no AWS call" counts DynamoDB as well.
      table: { client: world.factory.dynamoDocument(), tableName: TABLE },
      apiGateway: (target) => world.factory.apiGateway(target),
      limiters: new RateLimiterRegistry({ ratePerSecond: 10, burst: 40 }),
      retry: { baseDelayMs: 5, maxDelayMs: 50 },
    };
  });

  const request = (subscriptionId: string, planId = world.plans.gold, apiId = world.apis.pets.id) => ({
    subscriptionId,
    apiId,
    planId,
    application: app,
  });

  /**
   * A subscribe whose `CreateApiKey` answer is lost (the hook throws right after it, like a crash),
   * then a repeat after the lease: ACTIVE with generation 1; the generation-0 key is lost.
   */
  async function subscribeWithLostKey(subscriptionId: string) {
    const crashing = world.service({
      hooks: {
        afterStep: (step) => {
          if (step === SubscribeStep.API_KEY_CREATED) throw new Error('lost CreateApiKey response');
        },
      },
    });
    await expect(crashing.subscribe(request(subscriptionId), { leaseMs: 200 })).rejects.toThrow(
      'lost CreateApiKey response',
    );
    await sleep(250);
    const result = await service.subscribe(request(subscriptionId));
    expect(await world.repo.get(subscriptionId)).toMatchObject({
      status: 'ACTIVE',
      keyGeneration: 1,
      lostKeyGenerations: [0],
    });
    const named = (await allKeys(world.raw)).filter((k) => k.name === `fed-${subscriptionId}`);
    expect(named).toHaveLength(2);
    const lost = named.find((k) => k.id !== result.apiKeyId)!;
    return { result, lostKeyId: lost.id! };
  }

  /** Key ids in API Gateway must be exactly the ACTIVE records' keys. */
  async function expectOnlyActiveKeys(subscriptionIds: readonly string[]): Promise<void> {
    const active: string[] = [];
    for (const id of subscriptionIds) {
      const record = await world.repo.get(id);
      if (record?.status === 'ACTIVE') active.push(record.apiKeyId!);
    }
    expect((await allKeys(world.raw)).map((k) => k.id).sort()).toEqual(active.sort());
  }

  it('deletes the key of a lost CreateApiKey answer and keeps the ACTIVE key on its usage plan', async () => {
    const { result, lostKeyId } = await subscribeWithLostKey('sub-1');
    // A subscription whose key name has "fed-sub-1" as a prefix: the name query matches it, the sweep must not.
    const other = await service.subscribe(request('sub-10', world.plans.silver));
    expect((await service.get({ subscriptionId: 'sub-1' })).lostKeys).toBe(1);

    emu.proxy.setPolicy(SWEEPER_POLICY);
    emu.proxy.resetCalls();
    const swept = await sweepLostKeys(deps);

    expect(swept).toEqual<SweepResult>({
      examined: 1,
      deleted: [{ subscriptionId: 'sub-1', apiKeyId: lostKeyId }],
      kept: [{ subscriptionId: 'sub-1', apiKeyId: result.apiKeyId, reason: 'ACTIVE_KEY' }],
      skipped: [],
      errors: [],
      truncated: false,
    });
    expect(emu.proxy.calls.countOf('GetApiKeys')).toBe(1);
    expect(emu.proxy.calls.countOf('DeleteApiKey')).toBe(1);
    expect(emu.proxy.calls.count({ outcome: 'refused' })).toBe(0);

    await expectOnlyActiveKeys(['sub-1', 'sub-10']);
    expect(await keysOnPlan(world.raw, world.seeded.usagePlans.gold!.usagePlanId)).toEqual([result.apiKeyId]);
    expect(await keysOnPlan(world.raw, world.seeded.usagePlans.silver!.usagePlanId)).toEqual([
      other.apiKeyId,
    ]);
    const record = await world.repo.get('sub-1');
    expect(record).toMatchObject({ status: 'ACTIVE', apiKeyId: result.apiKeyId, sweptKeys: 1 });
    expect(record?.lostKeyGenerations).toBeUndefined();
    expect((record as unknown as { sweptAt?: string }).sweptAt).toBeDefined();
    expect((await service.get({ subscriptionId: 'sub-1' })).lostKeys).toBe(0);
    // The subscription answers as before: same key id and value.
    expect(await service.subscribe(request('sub-1'))).toEqual(result);
  });

  it('shows sweptAt and sweptKeys in get once swept, never a key value', async () => {
    const { result } = await subscribeWithLostKey('sub-1');
    const before = await service.get({ subscriptionId: 'sub-1' });
    expect(before).not.toHaveProperty('sweptAt');
    expect(before).not.toHaveProperty('sweptKeys');

    emu.proxy.setPolicy(SWEEPER_POLICY);
    await sweepLostKeys(deps);

    const record = await world.repo.get('sub-1');
    const view = await service.get({ subscriptionId: 'sub-1' });
    expect(view).toMatchObject({ status: 'ACTIVE', lostKeys: 0, sweptKeys: 1, sweptAt: record?.sweptAt });
    expect(view.sweptAt).toBe(view.updatedAt);
    const text = JSON.stringify(view);
    expect(text).not.toContain(result.apiKey);
    expect(text).not.toContain('requestHash');
    expect(text).not.toContain('lease');
  });

  it('deletes nothing on a second sweep', async () => {
    await subscribeWithLostKey('sub-1');
    emu.proxy.setPolicy(SWEEPER_POLICY);
    expect((await sweepLostKeys(deps)).deleted).toHaveLength(1);
    const keysBefore = await allKeys(world.raw);
    emu.proxy.resetCalls();

    const second = await sweepLostKeys(deps);
    expect(second).toMatchObject({ examined: 0, deleted: [], errors: [], truncated: false });
    expect(emu.proxy.calls.list({ service: 'apigateway' })).toHaveLength(0);
    // Named explicitly, it is examined again and still nothing is deleted.
    const named = await sweepLostKeys(deps, { subscriptionIds: ['sub-1'] });
    expect(named).toMatchObject({ examined: 1, deleted: [], errors: [] });
    expect(emu.proxy.calls.countOf('DeleteApiKey')).toBe(0);
    expect(await allKeys(world.raw)).toEqual(keysBefore);
  });

  it('deletes the lost key of a FAILED subscription', async () => {
    const crashing = world.service({
      hooks: {
        afterStep: (step) => {
          if (step === SubscribeStep.API_KEY_CREATED) throw new Error('lost CreateApiKey response');
        },
      },
    });
    await expect(crashing.subscribe(request('sub-1'), { leaseMs: 200 })).rejects.toThrow();
    await sleep(250);
    // The repeat's own key vanishes before it is attached: it fails permanently (compensated).
    const vanishing = world.service({
      hooks: {
        afterStep: async (step, { apiKeyId }) => {
          if (step === SubscribeStep.KEY_ID_RECORDED) {
            await world.raw.send(new DeleteApiKeyCommand({ apiKey: apiKeyId! }));
          }
        },
      },
    });
    expect((await codeOf(vanishing.subscribe(request('sub-1')))).code).toBe('NOT_FOUND');
    expect(await world.repo.get('sub-1')).toMatchObject({ status: 'FAILED', lostKeyGenerations: [0] });
    const [lost] = await allKeys(world.raw);
    expect(lost?.name).toBe('fed-sub-1');

    emu.proxy.setPolicy(SWEEPER_POLICY);
    const swept = await sweepLostKeys(deps);
    expect(swept).toMatchObject({
      examined: 1,
      deleted: [{ subscriptionId: 'sub-1', apiKeyId: lost!.id }],
      kept: [],
      errors: [],
    });
    expect(await allKeys(world.raw)).toEqual([]);
    const record = await world.repo.get('sub-1');
    expect(record).toMatchObject({ status: 'FAILED' });
    expect(record?.leaseOwner).toBeUndefined();
    expect(record?.lostKeyGenerations).toBeUndefined();
    // A FAILED subscription is retried by a repeat, after its sweep as before.
    const again = await service.subscribe(request('sub-1'));
    expect(again.status).toBe('ACTIVE');
    await expectOnlyActiveKeys(['sub-1']);
  });

  it('deletes the unrecorded key of a crashed PENDING subscription, whose repeat then completes', async () => {
    const crashing = world.service({
      hooks: {
        afterStep: (step) => {
          if (step === SubscribeStep.API_KEY_CREATED) throw new Error('crash');
        },
      },
    });
    // The crashed attempt's lease outlives any scheduling delay; the second sweep runs on a clock
    // past it (no sleep racing the lease on a loaded machine).
    await expect(crashing.subscribe(request('sub-1'), { leaseMs: 60_000 })).rejects.toThrow('crash');
    const [orphan] = await allKeys(world.raw);
    emu.proxy.setPolicy(SWEEPER_POLICY);

    // While the crashed attempt's lease runs, the sweep leaves the subscription alone.
    const early = await sweepLostKeys(deps);
    expect(early).toMatchObject({
      examined: 1,
      deleted: [],
      skipped: [{ subscriptionId: 'sub-1', reason: 'IN_FLIGHT' }],
    });
    expect(await allKeys(world.raw)).toHaveLength(1);

    const swept = await sweepLostKeys({ ...deps, now: () => Date.now() + 120_000 });
    expect(swept.deleted).toEqual([{ subscriptionId: 'sub-1', apiKeyId: orphan!.id }]);
    expect(await world.repo.get('sub-1')).toMatchObject({ status: 'PENDING', keyGeneration: 0 });

    emu.proxy.setPolicy(SUBSCRIPTIONS_POLICY);
    const result = await service.subscribe(request('sub-1'));
    // The generation-0 value is free again: no lost key counted.
    expect(await world.repo.get('sub-1')).toMatchObject({ status: 'ACTIVE', keyGeneration: 0 });
    expect((await service.get({ subscriptionId: 'sub-1' })).lostKeys).toBe(0);
    expect((await allKeys(world.raw)).map((k) => k.id)).toEqual([result.apiKeyId]);
  });

  it('deletes the key of a subscription revoked by plan removal and marks it deleted', async () => {
    const sub = await service.subscribe(request('sub-1'));
    const kept = await service.subscribe(request('sub-2', world.plans.basic, world.apis.orders.id));
    await revokeForRemovedPlan(world.repo, {
      accountId: emu.accountId,
      region: emu.region,
      usagePlanId: world.seeded.usagePlans.gold!.usagePlanId,
      apiId: world.apis.pets.id,
      planId: world.plans.gold,
    });
    expect(await world.repo.get('sub-1')).toMatchObject({ status: 'REVOKED', keyDeleted: false });

    emu.proxy.setPolicy(SWEEPER_POLICY);
    const swept = await sweepLostKeys(deps);
    expect(swept).toMatchObject({
      examined: 1,
      deleted: [{ subscriptionId: 'sub-1', apiKeyId: sub.apiKeyId }],
      errors: [],
    });
    expect(await world.repo.get('sub-1')).toMatchObject({ status: 'REVOKED', keyDeleted: true });
    expect((await allKeys(world.raw)).map((k) => k.id)).toEqual([kept.apiKeyId]);
    // Unsubscribe still answers REVOKED, with nothing left to delete.
    expect((await service.unsubscribe({ subscriptionId: 'sub-1' }, world.emit)).result.status).toBe(
      'REVOKED',
    );
  });

  it('keeps a key named like the subscription that the agent did not create', async () => {
    const { result, lostKeyId } = await subscribeWithLostKey('sub-1');
    const foreign = await world.raw.send(
      new CreateApiKeyCommand({ name: 'fed-sub-1', description: 'made by hand', enabled: false }),
    );
    emu.proxy.setPolicy(SWEEPER_POLICY);
    const swept = await sweepLostKeys(deps, { subscriptionIds: ['sub-1'] });
    expect(swept.deleted).toEqual([{ subscriptionId: 'sub-1', apiKeyId: lostKeyId }]);
    expect(swept.kept).toEqual(
      expect.arrayContaining([
        { subscriptionId: 'sub-1', apiKeyId: result.apiKeyId, reason: 'ACTIVE_KEY' },
        { subscriptionId: 'sub-1', apiKeyId: foreign.id, reason: 'FOREIGN' },
      ]),
    );
    expect((await allKeys(world.raw)).map((k) => k.id).sort()).toEqual([result.apiKeyId, foreign.id].sort());
  });

  it('follows GetApiKeys paging (500 a page) to a lost key behind 500 keys the name query also matches', async () => {
    // 500 keys whose names start with "fed-sub-1" (the query is a prefix) come first in moto's order.
    const names = Array.from({ length: 500 }, (_, i) => `fed-sub-1-other-${i}`);
    for (let i = 0; i < names.length; i += 25) {
      await Promise.all(
        names
          .slice(i, i + 25)
          .map((name) => world.raw.send(new CreateApiKeyCommand({ name, enabled: false }))),
      );
    }
    const { result, lostKeyId } = await subscribeWithLostKey('sub-1');
    emu.proxy.setPolicy(SWEEPER_POLICY);
    emu.proxy.resetCalls();
    const swept = await sweepLostKeys(deps, { subscriptionIds: ['sub-1'] });
    expect(swept.deleted).toEqual([{ subscriptionId: 'sub-1', apiKeyId: lostKeyId }]);
    expect(swept.kept).toEqual([
      { subscriptionId: 'sub-1', apiKeyId: result.apiKeyId, reason: 'ACTIVE_KEY' },
    ]);
    expect(emu.proxy.calls.countOf('GetApiKeys')).toBe(2);
    expect(emu.proxy.calls.count({ outcome: 'rejected' })).toBe(0);
    expect(await allKeys(world.raw)).toHaveLength(501);
  });

  it('sweeps only the named subscriptions and reports unknown ones', async () => {
    const one = await subscribeWithLostKey('sub-1');
    const two = await subscribeWithLostKey('sub-2');
    emu.proxy.setPolicy(SWEEPER_POLICY);
    const swept = await sweepLostKeys(deps, { subscriptionIds: ['sub-2', 'nope'] });
    expect(swept.examined).toBe(1);
    expect(swept.deleted).toEqual([{ subscriptionId: 'sub-2', apiKeyId: two.lostKeyId }]);
    expect(swept.errors).toEqual([
      { subscriptionId: 'nope', code: 'NOT_FOUND', message: 'Subscription nope does not exist' },
    ]);
    expect((await allKeys(world.raw)).map((k) => k.id)).toContain(one.lostKeyId);
    expect((await world.repo.get('sub-1'))?.lostKeyGenerations).toEqual([0]);
  });

  it('examines at most `limit` candidates and says more remain', async () => {
    await subscribeWithLostKey('sub-1');
    await subscribeWithLostKey('sub-2');
    emu.proxy.setPolicy(SWEEPER_POLICY);
    const first = await sweepLostKeys(deps, { limit: 1 });
    expect(first).toMatchObject({ examined: 1, truncated: true });
    expect(first.deleted).toHaveLength(1);
    const second = await sweepLostKeys(deps, { limit: 1 });
    expect(second).toMatchObject({ examined: 1, truncated: false });
    expect(second.deleted).toHaveLength(1);
    expect(second.deleted[0]!.subscriptionId).not.toBe(first.deleted[0]!.subscriptionId);
    await expectOnlyActiveKeys(['sub-1', 'sub-2']);
  });

  it('refuses with a CONFIG error and makes no AWS call when sweepLostKeys is off', async () => {
    await subscribeWithLostKey('sub-1');
    emu.proxy.setPolicy(SWEEPER_POLICY);
    emu.proxy.resetCalls();
    const error = await codeOf(sweepLostKeys({ ...deps, enabled: false }));
    expect(error.code).toBe('CONFIG');
    expect(error.message).toContain('"sweepLostKeys": true');
    expect(emu.proxy.calls.count()).toBe(0);
    expect(await allKeys(world.raw)).toHaveLength(2);
  });

  it('fails with AWS_ACCESS_DENIED, record unchanged, when the role lacks the opt-in GET /apikeys', async () => {
    await subscribeWithLostKey('sub-1');
    emu.proxy.setPolicy(SUBSCRIPTIONS_POLICY);
    emu.proxy.resetCalls();
    const error = await codeOf(sweepLostKeys(deps));
    expect(error.code).toBe('AWS_ACCESS_DENIED');
    expect(error.message).toContain('apigateway:GET');
    expect(emu.proxy.calls.count({ outcome: 'refused' })).toBe(1);
    expect(emu.proxy.calls.countOf('DeleteApiKey')).toBe(0);
    expect(await allKeys(world.raw)).toHaveLength(2);
    expect((await world.repo.get('sub-1'))?.lostKeyGenerations).toEqual([0]);
  });

  describe('subscriptions handler { action: "sweep" }', () => {
    const handlerOf = (withSweep: boolean) =>
      createSubscriptionsHandler({
        service,
        outbox: { append: async () => [] },
        publisher: noRelay,
        ...(withSweep ? { sweep: (r) => sweepLostKeys(deps, r) } : {}),
      });

    it('sweeps the named subscriptions and answers the sweep result', async () => {
      const { lostKeyId } = await subscribeWithLostKey('sub-1');
      emu.proxy.setPolicy(SWEEPER_POLICY);
      const answer = (await handlerOf(true)({ action: 'sweep', subscriptionIds: ['sub-1'] })) as SweepResult;
      expect(answer.deleted).toEqual([{ subscriptionId: 'sub-1', apiKeyId: lostKeyId }]);
      await expectOnlyActiveKeys(['sub-1']);
    });

    it('rejects malformed sweep events with VALIDATION and no call', async () => {
      const handler = handlerOf(true);
      emu.proxy.resetCalls();
      for (const event of [
        { action: 'sweep', limit: 0 },
        { action: 'sweep', limit: 1.5 },
        { action: 'sweep', subscriptionIds: [] },
        { action: 'sweep', subscriptionIds: ['has space'] },
        { action: 'sweep', subscriptionIds: Array.from({ length: 51 }, (_, i) => `s-${i}`) },
        { action: 'sweep', extra: true },
      ]) {
        await expect(handler(event), JSON.stringify(event)).rejects.toThrow(/^VALIDATION: /);
      }
      expect(emu.proxy.calls.count()).toBe(0);
    });

    it('answers CONFIG when the handler has no sweeper', async () => {
      await expect(handlerOf(false)({ action: 'sweep' })).rejects.toThrow(/^CONFIG: .*sweepLostKeys/);
    });
  });
});
