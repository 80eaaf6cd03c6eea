import { randomBytes } from 'node:crypto';
import { DeleteApiKeyCommand, GetApiKeysCommand } from '@aws-sdk/client-api-gateway';
import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import {
  revokeForRemovedPlan,
  SubscribeStep,
  type SubscriptionService,
} from '../../layers/federation-core/src/index.js';
import type { Emulator } from '../support/emulator.js';
import {
  APP,
  allKeys,
  apiGatewayWrites,
  codeOf,
  goldRequest,
  keysOnPlan,
  ledgerDump,
  SECRET_NAME,
  sleep,
  type World,
  withEmulatorWorld,
} from './support.js';

/** Fails the test if a key exists that is on a usage plan without an ACTIVE record, or the reverse. */
async function expectLedgerMatchesApiGateway(world: World): Promise<void> {
  const onPlans = new Map<string, string>();
  for (const usagePlan of Object.values(world.seeded.usagePlans)) {
    for (const keyId of await keysOnPlan(world.raw, usagePlan.usagePlanId))
      onPlans.set(keyId, usagePlan.usagePlanId);
  }
  const active = new Map<string, string>();
  for (const usagePlan of Object.values(world.seeded.usagePlans)) {
    for (const r of await world.repo.listByUsagePlan('123456789012', 'us-east-1', usagePlan.usagePlanId)) {
      if (r.status === 'ACTIVE') active.set(r.apiKeyId!, r.usagePlanId);
    }
  }
  expect(Object.fromEntries(onPlans)).toEqual(Object.fromEntries(active));
}

describe('subscribe against the emulator (documented POST + DELETE policy)', () => {
  let emu: Emulator;
  let world: World;
  let service: SubscriptionService;

  withEmulatorWorld((started, built) => {
    emu = started;
    world = built;
    service = world.service();
  });

  const request = (overrides: Record<string, unknown> = {}) => goldRequest(world, overrides);

  it('creates an enabled key named for the subscription and puts it on the usage plan', async () => {
    const result = await service.subscribe(request());
    const usagePlanId = world.seeded.usagePlans.gold!.usagePlanId;
    expect(result).toMatchObject({
      subscriptionId: 'sub-1',
      status: 'ACTIVE',
      usagePlanId,
      apiId: world.apis.pets.id,
      planId: world.plans.gold,
    });
    expect(result.apiKey).toMatch(/^[A-Za-z0-9]{40}$/);
    const keys = await allKeys(world.raw);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({
      id: result.apiKeyId,
      name: 'fed-sub-1',
      enabled: true,
      value: result.apiKey,
    });
    expect(keys[0]!.description).toContain('sub-1');
    expect(keys[0]!.description).toContain('app-42');
    expect(await keysOnPlan(world.raw, usagePlanId)).toEqual([result.apiKeyId]);
    expect(await world.repo.get('sub-1')).toMatchObject({ status: 'ACTIVE', apiKeyId: result.apiKeyId });
    expect(emu.proxy.calls.byOperation({ service: 'apigateway' })).toEqual({
      CreateApiKey: 1,
      CreateUsagePlanKey: 1,
    });
    expect(emu.proxy.calls.count({ outcome: 'refused' })).toBe(0);
  });

  it('never stores the key value in the ledger', async () => {
    const result = await service.subscribe(request());
    const custom = await service.subscribe(
      request({ subscriptionId: 'sub-2', apiKey: 'CustomValue0123456789abcdef' }),
    );
    const dump = await ledgerDump(world.table);
    expect(dump).toContain(result.apiKeyId);
    expect(dump).not.toContain(result.apiKey);
    expect(dump).not.toContain(custom.apiKey);
  });

  it('answers a repeat with the same key id and value, without calling API Gateway', async () => {
    const first = await service.subscribe(request());
    emu.proxy.resetCalls();
    const again = await world.service().subscribe(request());
    expect(again).toEqual(first);
    expect(emu.proxy.calls.count({ service: 'apigateway' })).toBe(0);
  });

  it('creates one key for 50 concurrent identical subscribes, and all get the same ACTIVE answer', async () => {
    const services = Array.from({ length: 5 }, () => world.service());
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => services[i % 5]!.subscribe(request(), { pollMs: 20 })),
    );
    const keys = await allKeys(world.raw);
    expect(keys).toHaveLength(1);
    expect(emu.proxy.calls.countOf('CreateApiKey')).toBe(1);
    expect(emu.proxy.calls.countOf('CreateUsagePlanKey')).toBe(1);
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
    expect(answers[0]).toMatchObject({ status: 'ACTIVE', apiKeyId: keys[0]!.id, apiKey: keys[0]!.value });
  });

  it('re-derives the same value after the secret is rotated, and uses the new version for new subscriptions', async () => {
    const rotating = world.service({ secretTtlMs: 0 });
    const before = await rotating.subscribe(request());
    const secrets = new SecretsManagerClient(emu.clientConfig({ via: 'moto' }));
    await secrets.send(
      new PutSecretValueCommand({ SecretId: SECRET_NAME, SecretString: randomBytes(48).toString('hex') }),
    );
    expect(await rotating.subscribe(request())).toEqual(before);
    const after = await rotating.subscribe(request({ subscriptionId: 'sub-2' }));
    const records = [await world.repo.get('sub-1'), await world.repo.get('sub-2')];
    expect(records[0]?.secretVersionId).not.toBe(records[1]?.secretVersionId);
    const values = new Map((await allKeys(world.raw)).map((k) => [k.id, k.value]));
    expect(values.get(before.apiKeyId)).toBe(before.apiKey);
    expect(values.get(after.apiKeyId)).toBe(after.apiKey);
  });

  it('rejects a repeat with another plan or application as CONFLICT, with no API Gateway write', async () => {
    await service.subscribe(request());
    emu.proxy.resetCalls();
    expect(await codeOf(service.subscribe(request({ planId: world.plans.silver })))).toBe('CONFLICT');
    expect(await codeOf(service.subscribe(request({ application: { id: 'app-43', name: 'Other' } })))).toBe(
      'CONFLICT',
    );
    expect(await codeOf(service.subscribe(request({ apiKey: 'AnotherCustomValue1234567' })))).toBe(
      'CONFLICT',
    );
    expect(apiGatewayWrites(emu)).toBe(0);
  });

  it('uses a custom key value, echoes it on a repeat and rejects a repeat without it', async () => {
    const apiKey = 'CustomValue0123456789abcdef';
    const first = await service.subscribe(request({ apiKey }));
    expect(first.apiKey).toBe(apiKey);
    expect((await allKeys(world.raw))[0]!.value).toBe(apiKey);
    expect(await service.subscribe(request({ apiKey }))).toEqual(first);
    expect(await codeOf(service.subscribe(request()))).toBe('CONFLICT');
  });

  it('fails a custom value that another key already has as CONFLICT and leaves no key behind', async () => {
    const apiKey = 'CustomValue0123456789abcdef';
    await service.subscribe(request({ apiKey }));
    expect(await codeOf(service.subscribe(request({ subscriptionId: 'sub-2', apiKey })))).toBe('CONFLICT');
    expect(await allKeys(world.raw)).toHaveLength(1);
    expect(await world.repo.get('sub-2')).toMatchObject({ status: 'FAILED', failure: { code: 'CONFLICT' } });
  });

  it('rejects an unknown API, an unknown plan and a plan of another API as NOT_FOUND with no AWS write', async () => {
    expect(await codeOf(service.subscribe(request({ apiId: 'no-such-api' })))).toBe('NOT_FOUND');
    expect(await codeOf(service.subscribe(request({ planId: 'no-such-plan' })))).toBe('NOT_FOUND');
    expect(await codeOf(service.subscribe(request({ planId: world.plans.basic })))).toBe('NOT_FOUND');
    expect(emu.proxy.calls.count({ service: 'apigateway' })).toBe(0);
    expect(await world.repo.get('sub-1')).toBeUndefined();
  });

  it('rejects malformed requests as VALIDATION before any AWS call', async () => {
    const bad: Record<string, unknown>[] = [
      request({ subscriptionId: '' }),
      request({ subscriptionId: 'has space' }),
      request({ apiId: 42 }),
      request({ planId: undefined }),
      request({ application: { id: 'a' } }),
      request({ application: { id: 'a', name: '' } }),
      request({ apiKey: 'short' }),
      request({ apiKey: 'has-dashes-and_underscores-123' }),
      request({ extra: true }),
    ];
    for (const input of bad) expect(await codeOf(service.subscribe(input))).toBe('VALIDATION');
    expect(emu.proxy.calls.count()).toBe(0);
  });

  describe('crash recovery', () => {
    const steps = Object.values(SubscribeStep);

    for (const step of steps) {
      it(`completes a subscription whose first attempt crashed after "${step}", with no key unaccounted for`, async () => {
        const crashing = world.service({
          hooks: {
            afterStep: (s) => {
              if (s === step) throw new Error(`crash after ${step}`);
            },
          },
        });
        await expect(crashing.subscribe(request(), { leaseMs: 1500 })).rejects.toThrow(`crash after ${step}`);
        expect((await world.repo.get('sub-1'))?.status).toBe('PENDING');
        // While the crashed attempt's lease runs, a repeat is told to come back.
        expect(await codeOf(service.subscribe(request(), { waitMs: 0 }))).toBe('BUSY');
        await sleep(1600);
        const result = await service.subscribe(request());
        expect(result.status).toBe('ACTIVE');
        expect(await service.subscribe(request())).toEqual(result);

        const keys = await allKeys(world.raw);
        const active = keys.find((k) => k.id === result.apiKeyId);
        expect(active?.value).toBe(result.apiKey);
        await expectLedgerMatchesApiGateway(world);
        const record = await world.repo.get('sub-1');
        if (step === SubscribeStep.API_KEY_CREATED) {
          // The lost-response case: the first key exists with an unknown id (the policy cannot list
          // keys). It is on no usage plan, so it grants nothing, and the record counts it.
          expect(keys).toHaveLength(2);
          expect(keys.every((k) => k.name === 'fed-sub-1')).toBe(true);
          expect(record).toMatchObject({ keyGeneration: 1, lostKeyGenerations: [0] });
        } else {
          expect(keys).toHaveLength(1);
          expect(record?.lostKeyGenerations).toBeUndefined();
        }
        expect(emu.proxy.calls.count({ outcome: 'refused' })).toBe(0);
      });
    }

    it('keeps the key id through a transient CreateUsagePlanKey failure and completes on the repeat', async () => {
      emu.proxy.setFaults({ seed: 1, rates: { error503: 1 }, operations: ['CreateUsagePlanKey'] });
      expect(await codeOf(service.subscribe(request(), { waitMs: 0 }))).toBe('AWS_ERROR');
      const pending = await world.repo.get('sub-1');
      expect(pending).toMatchObject({ status: 'PENDING' });
      expect(pending?.apiKeyId).toBeDefined();
      expect(pending?.leaseOwner).toBeUndefined();
      emu.proxy.setFaults(undefined);
      const result = await service.subscribe(request());
      expect(result.apiKeyId).toBe(pending?.apiKeyId);
      expect(await allKeys(world.raw)).toHaveLength(1);
      await expectLedgerMatchesApiGateway(world);
    });

    it('tries again within the call after a transient failure and answers ACTIVE', async () => {
      let pendingSteps = 0;
      const flaky = world.service({
        hooks: {
          afterStep: (step) => {
            if (step === SubscribeStep.PENDING) pendingSteps++;
            // The first attempt meets a CreateUsagePlanKey that keeps failing; the second does not.
            if (step === SubscribeStep.KEY_ID_RECORDED && pendingSteps === 1) {
              emu.proxy.setFaults({ seed: 5, rates: { error503: 1 }, operations: ['CreateUsagePlanKey'] });
            }
            if (step === SubscribeStep.PENDING && pendingSteps === 2) emu.proxy.setFaults(undefined);
          },
        },
      });
      const result = await flaky.subscribe(request(), { pollMs: 10 });
      expect(result.status).toBe('ACTIVE');
      expect(pendingSteps).toBe(2);
      expect(emu.proxy.calls.countOf('CreateUsagePlanKey')).toBe(5);
      expect(emu.proxy.calls.countOf('CreateApiKey')).toBe(1);
      expect(await world.repo.get('sub-1')).toMatchObject({ status: 'ACTIVE', attempt: 2 });
      await expectLedgerMatchesApiGateway(world);
    });

    it('retries throttled calls through the rate limiter and succeeds', async () => {
      emu.proxy.setFaults({ seed: 7, rates: { throttle429: 0.5 } });
      const result = await service.subscribe(request());
      expect(result.status).toBe('ACTIVE');
      expect(emu.proxy.stats.faults.throttle429).toBeGreaterThan(0);
      expect(await allKeys(world.raw)).toHaveLength(1);
      await expectLedgerMatchesApiGateway(world);
    });

    it('deletes its key and marks the subscription FAILED when the key vanishes before it is attached', async () => {
      const deleting = world.service({
        hooks: {
          afterStep: async (s, { apiKeyId }) => {
            if (s === SubscribeStep.KEY_ID_RECORDED) {
              await world.raw.send(new DeleteApiKeyCommand({ apiKey: apiKeyId! }));
            }
          },
        },
      });
      expect(await codeOf(deleting.subscribe(request()))).toBe('NOT_FOUND');
      expect(await world.repo.get('sub-1')).toMatchObject({ status: 'FAILED' });
      expect(emu.proxy.calls.countOf('DeleteApiKey')).toBe(1);
      // A later repeat starts over and succeeds.
      const result = await service.subscribe(request());
      expect(result.status).toBe('ACTIVE');
      expect(await allKeys(world.raw)).toHaveLength(1);
      await expectLedgerMatchesApiGateway(world);
    });
  });

  describe('unsubscribe', () => {
    it('deletes the key in its account-region, and a second unsubscribe answers the same', async () => {
      const sub = await service.subscribe(request());
      const first = await service.unsubscribe({ subscriptionId: 'sub-1' }, world.emit);
      expect(first.result).toEqual({ subscriptionId: 'sub-1', status: 'REVOKED' });
      expect(first.events).toEqual([
        {
          seq: 1,
          createdAt: expect.any(String),
          event: 'subscription.revoked',
          // Appended once the key is gone, and says so.
          payload: {
            subscriptionId: 'sub-1',
            apiId: sub.apiId,
            planId: sub.planId,
            reason: 'UNSUBSCRIBED',
            keyDeleted: true,
            keyDeletedAt: expect.stringMatching(/^\d{4}-/),
          },
        },
      ]);
      expect(await allKeys(world.raw)).toHaveLength(0);
      const second = await service.unsubscribe({ subscriptionId: 'sub-1' }, world.emit);
      expect(second.result).toEqual(first.result);
      expect(second.events).toEqual([]);
      expect(emu.proxy.calls.countOf('DeleteApiKey')).toBe(1);
      expect(await world.repo.get('sub-1')).toMatchObject({
        status: 'REVOKED',
        revokeReason: 'UNSUBSCRIBED',
        keyDeleted: true,
        apiKeyId: sub.apiKeyId,
      });
    });

    it('counts a key already deleted in API Gateway as revoked', async () => {
      const sub = await service.subscribe(request());
      await world.raw.send(new DeleteApiKeyCommand({ apiKey: sub.apiKeyId }));
      const out = await service.unsubscribe({ subscriptionId: 'sub-1' }, world.emit);
      expect(out.result.status).toBe('REVOKED');
      expect(emu.proxy.calls.list({ operation: 'DeleteApiKey' }).map((c) => c.status)).toEqual([404]);
    });

    it('finishes a deletion that failed, on the repeat', async () => {
      await service.subscribe(request());
      emu.proxy.setFaults({ seed: 3, rates: { error500: 1 }, operations: ['DeleteApiKey'] });
      expect(await codeOf(service.unsubscribe({ subscriptionId: 'sub-1' }, world.emit))).toBe('AWS_ERROR');
      expect(await world.repo.get('sub-1')).toMatchObject({ status: 'REVOKED', keyDeleted: false });
      expect(await allKeys(world.raw)).toHaveLength(1);
      emu.proxy.setFaults(undefined);
      const again = await service.unsubscribe({ subscriptionId: 'sub-1' }, world.emit);
      expect(again.result.status).toBe('REVOKED');
      // The failed call appended nothing: the repeat that deletes the key tells the control plane.
      expect(again.events.map((e) => e.payload)).toEqual([
        expect.objectContaining({ subscriptionId: 'sub-1', reason: 'UNSUBSCRIBED', keyDeleted: true }),
      ]);
      expect(await allKeys(world.raw)).toHaveLength(0);
    });

    it('appends one event when two unsubscribes finish the same deletion at once', async () => {
      await service.subscribe(request());
      emu.proxy.setFaults({ seed: 5, rates: { error500: 1 }, operations: ['DeleteApiKey'] });
      expect(await codeOf(service.unsubscribe({ subscriptionId: 'sub-1' }, world.emit))).toBe('AWS_ERROR');
      emu.proxy.setFaults(undefined);
      const both = await Promise.all([
        service.unsubscribe({ subscriptionId: 'sub-1' }, world.emit),
        world.service().unsubscribe({ subscriptionId: 'sub-1' }, world.emit),
      ]);
      expect(both.map((o) => o.result.status)).toEqual(['REVOKED', 'REVOKED']);
      expect(both.flatMap((o) => o.events)).toHaveLength(1);
      expect(await world.outbox.listAfter(0)).toHaveLength(1);
    });

    it('rejects an unknown subscription as NOT_FOUND and a revoked one on subscribe as CONFLICT', async () => {
      expect(await codeOf(service.unsubscribe({ subscriptionId: 'nope' }, world.emit))).toBe('NOT_FOUND');
      await service.subscribe(request());
      await service.unsubscribe({ subscriptionId: 'sub-1' }, world.emit);
      expect(await codeOf(service.subscribe(request()))).toBe('CONFLICT');
    });
  });

  describe('get', () => {
    it('shows the record without any key value', async () => {
      const sub = await service.subscribe(request());
      const view = await service.get({ subscriptionId: 'sub-1' });
      expect(view).toMatchObject({
        subscriptionId: 'sub-1',
        status: 'ACTIVE',
        apiKeyId: sub.apiKeyId,
        usagePlanId: sub.usagePlanId,
        accountId: '123456789012',
        region: 'us-east-1',
        application: APP,
        keyMode: 'derived',
        attempts: 1,
        lostKeys: 0,
      });
      const text = JSON.stringify(view);
      expect(text).not.toContain(sub.apiKey);
      expect(text).not.toContain('requestHash');
      expect(await codeOf(service.get({ subscriptionId: 'nope' }))).toBe('NOT_FOUND');
    });
  });

  describe('plan removal', () => {
    it('revokes the subscriptions of the removed plan only and reports them', async () => {
      const gold1 = await service.subscribe(request());
      await service.subscribe(request({ subscriptionId: 'sub-2' }));
      await service.subscribe(request({ subscriptionId: 'sub-3', planId: world.plans.silver }));
      const usagePlanId = world.seeded.usagePlans.gold!.usagePlanId;
      const out = await service.revokeForRemovedPlan({
        accountId: '123456789012',
        region: 'us-east-1',
        usagePlanId,
        apiId: world.apis.pets.id,
        planId: world.plans.gold,
      });
      expect(out.result.subscriptionIds.sort()).toEqual(['sub-1', 'sub-2']);
      expect(out.events.map((e) => e.payload)).toEqual(
        expect.arrayContaining([
          {
            subscriptionId: 'sub-1',
            apiId: world.apis.pets.id,
            planId: world.plans.gold,
            reason: 'PLAN_REMOVED',
            keyDeleted: false, // revoked in the ledger; the subscriptions function deletes the key
          },
          {
            subscriptionId: 'sub-2',
            apiId: world.apis.pets.id,
            planId: world.plans.gold,
            reason: 'PLAN_REMOVED',
            keyDeleted: false, // revoked in the ledger; the subscriptions function deletes the key
          },
        ]),
      );
      expect((await world.repo.get('sub-3'))?.status).toBe('ACTIVE');
      // Discovery deletes nothing: the keys stay until an unsubscribe deletes them.
      expect(await allKeys(world.raw)).toHaveLength(3);
      expect(await world.repo.get('sub-1')).toMatchObject({ status: 'REVOKED', keyDeleted: false });
      // The standalone form discovery calls: ledger only, idempotent.
      const again = await revokeForRemovedPlan(world.repo, {
        accountId: '123456789012',
        region: 'us-east-1',
        usagePlanId,
        apiId: world.apis.pets.id,
        planId: world.plans.gold,
      });
      expect(again.events).toEqual([]);
      const unsub = await service.unsubscribe({ subscriptionId: 'sub-1' }, world.emit);
      // No second revocation; the event says the key is gone now.
      expect(unsub.events.map((e) => e.payload)).toEqual([
        expect.objectContaining({ subscriptionId: 'sub-1', reason: 'PLAN_REMOVED', keyDeleted: true }),
      ]);
      const remaining = await world.raw.send(new GetApiKeysCommand({}));
      expect(remaining.items?.map((k) => k.id)).not.toContain(gold1.apiKeyId);
      expect(await world.repo.get('sub-1')).toMatchObject({ status: 'REVOKED', keyDeleted: true });
    });

    it('makes an in-flight subscribe give up and delete its key when its plan is removed', async () => {
      let revoked = false;
      const racing = world.service({
        hooks: {
          afterStep: async (s) => {
            if (s === SubscribeStep.KEY_ID_RECORDED && !revoked) {
              revoked = true;
              await service.revokeForRemovedPlan({
                accountId: '123456789012',
                region: 'us-east-1',
                usagePlanId: world.seeded.usagePlans.gold!.usagePlanId,
                apiId: world.apis.pets.id,
                planId: world.plans.gold,
              });
            }
          },
        },
      });
      expect(await codeOf(racing.subscribe(request()))).toBe('CONFLICT');
      expect(await allKeys(world.raw)).toHaveLength(0);
      // The key is gone at once; the mark and its event are the hand-over's (revoke-keys here).
      expect(await world.repo.get('sub-1')).toMatchObject({ status: 'REVOKED', keyDeleted: false });
      const handedOver = await service.revokeKeys({ subscriptionIds: ['sub-1'] }, world.emit);
      expect(handedOver).toEqual({ deleted: ['sub-1'], alreadyDeleted: [], skipped: [] });
      expect(await world.repo.get('sub-1')).toMatchObject({ status: 'REVOKED', keyDeleted: true });
      expect((await world.outbox.listAfter(0)).map((e) => e.payload)).toEqual([
        expect.objectContaining({ subscriptionId: 'sub-1', keyDeleted: true }),
      ]);
    });
  });
});
