/**
 * The management API budget of subscriptions: `CreateApiKey` and `DeleteApiKey` have AWS's own quota of
 * 5 requests/s besides the account's 10 requests/s; the fidelity proxy enforces both, and the buckets the
 * subscriptions function builds from its config (`subscriptionLimiters`) stay within them.
 */
import { describe, expect, it } from 'vitest';
import { API_KEY_OPERATION_QUOTAS } from '../../emulator/proxy.js';
import {
  parseAgentConfig,
  RateLimiterRegistry,
  subscriptionLimiters,
} from '../../layers/federation-core/src/index.js';
import type { Emulator } from '../support/emulator.js';
import { type World, withEmulatorWorld } from './support.js';

const app = { id: 'app-1', name: 'App' };
const SUBSCRIPTIONS = 7;

describe('subscriptions within the API key quotas', () => {
  let emu: Emulator;
  let world: World;

  withEmulatorWorld((started, built) => {
    emu = started;
    world = built;
    emu.proxy.setThrottle({ ratePerSecond: 10, burst: 40, operations: API_KEY_OPERATION_QUOTAS });
  });

  const subscribeAll = (limiters: RateLimiterRegistry) => {
    const service = world.service({ limiters });
    return Promise.all(
      Array.from({ length: SUBSCRIPTIONS }, (_, i) =>
        service.subscribe({
          subscriptionId: `budget-${i}`,
          apiId: world.apis.pets.id,
          planId: world.plans.gold,
          application: app,
        }),
      ),
    );
  };

  it('an account bucket alone lets a burst of CreateApiKey run into their 5 requests/s quota', async () => {
    await subscribeAll(new RateLimiterRegistry({ ratePerSecond: 10, burst: 40 }));
    expect(emu.proxy.stats.throttle.sent429ByOperation.CreateApiKey ?? 0).toBeGreaterThan(0);
  });

  it('the default buckets create and delete keys without a single 429', async () => {
    const config = { agent: parseAgentConfig({}) };
    const limiters = subscriptionLimiters(config);
    const created = await subscribeAll(limiters);
    expect(created.every((r) => r.status === 'ACTIVE')).toBe(true);
    const service = world.service({ limiters });
    await Promise.all(
      created.map((r) => service.unsubscribe({ subscriptionId: r.subscriptionId }, world.emit)),
    );
    expect(emu.proxy.stats.throttle.sent429).toBe(0);
    expect(emu.proxy.calls.byOperation({ service: 'apigateway' })).toMatchObject({
      CreateApiKey: SUBSCRIPTIONS,
      DeleteApiKey: SUBSCRIPTIONS,
    });
  });
});
