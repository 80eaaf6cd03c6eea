/**
 * Issue 15 against the emulator: subscriptions under concurrency and change. Transient 409s from
 * API Gateway (the fidelity proxy's `conflict409` fault) are retried, never read as "already done".
 */
import { describe, expect, it } from 'vitest';
import type { SubscriptionService } from '../../layers/federation-core/src/index.js';
import type { Emulator } from '../support/emulator.js';
import { allKeys, codeOf, goldRequest, keysOnPlan, type World, withEmulatorWorld } from './support.js';

describe('subscriptions under concurrency (issue 15)', () => {
  let emu: Emulator;
  let world: World;
  let service: SubscriptionService;

  withEmulatorWorld((started, built) => {
    emu = started;
    world = built;
    service = world.service();
  });

  const request = (overrides: Record<string, unknown> = {}) => goldRequest(world, overrides);

  describe('409 ConflictException "concurrent modification" is transient', () => {
    it('never answers ACTIVE while CreateUsagePlanKey keeps answering it, and the repeat attaches the key', async () => {
      const usagePlanId = world.seeded.usagePlans.gold!.usagePlanId;
      emu.proxy.setFaults({ seed: 15, rates: { conflict409: 1 }, operations: ['CreateUsagePlanKey'] });
      const code = await codeOf(service.subscribe(request(), { waitMs: 300, pollMs: 20 }));
      expect(code).toBe('AWS_ERROR');
      // Retried with backoff (4 attempts per call, calls repeated until the wait deadline).
      expect(emu.proxy.stats.faults.conflict409).toBeGreaterThan(1);
      const pending = await world.repo.get('sub-1');
      expect(pending).toMatchObject({ status: 'PENDING' });
      expect(pending?.apiKeyId).toBeDefined();
      expect(await keysOnPlan(world.raw, usagePlanId)).toEqual([]);

      emu.proxy.setFaults(undefined);
      const active = await service.subscribe(request());
      expect(active).toMatchObject({ status: 'ACTIVE', apiKeyId: pending?.apiKeyId });
      expect(await keysOnPlan(world.raw, usagePlanId)).toEqual([active.apiKeyId]);
      expect(await allKeys(world.raw)).toHaveLength(1);
    });

    it('ends ACTIVE with the key on its plan when some CreateUsagePlanKey calls collide', async () => {
      const usagePlanId = world.seeded.usagePlans.gold!.usagePlanId;
      emu.proxy.setFaults({ seed: 7, rates: { conflict409: 0.6 }, operations: ['CreateUsagePlanKey'] });
      const results = await Promise.all(
        ['sub-1', 'sub-2', 'sub-3', 'sub-4'].map((subscriptionId) =>
          service.subscribe(request({ subscriptionId }), { pollMs: 20 }),
        ),
      );
      expect(emu.proxy.stats.faults.conflict409).toBeGreaterThan(0);
      expect((await keysOnPlan(world.raw, usagePlanId)).sort()).toEqual(
        results.map((r) => r.apiKeyId).sort(),
      );
    });

    it('does not turn a custom key value into a CONFLICT when CreateApiKey collides', async () => {
      const apiKey = 'CustomValue0123456789abcdef';
      emu.proxy.setFaults({ seed: 15, rates: { conflict409: 1 }, operations: ['CreateApiKey'] });
      expect(await codeOf(service.subscribe(request({ apiKey }), { waitMs: 300, pollMs: 20 }))).toBe(
        'AWS_ERROR',
      );
      expect(await world.repo.get('sub-1')).toMatchObject({ status: 'PENDING' });
      emu.proxy.setFaults(undefined);
      const active = await service.subscribe(request({ apiKey }));
      expect(active).toMatchObject({ status: 'ACTIVE', apiKey });
      expect(await keysOnPlan(world.raw, world.seeded.usagePlans.gold!.usagePlanId)).toEqual([
        active.apiKeyId,
      ]);
    });

    it('still reads a real "API Key already exists" as a CONFLICT for a custom value', async () => {
      const apiKey = 'CustomValue0123456789abcdef';
      await service.subscribe(request({ apiKey }));
      expect(await codeOf(service.subscribe(request({ subscriptionId: 'sub-2', apiKey })))).toBe('CONFLICT');
    });
  });
});
