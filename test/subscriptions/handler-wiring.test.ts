import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../support/emulator.js';
import { allKeys, buildWorld, keysOnPlan, SECRET_NAME, TABLE, type World } from './support.js';

/** The deployed wiring: the module-scope `handler`, configured only through the environment. */
describe('subscriptions handler as deployed (environment wiring)', () => {
  let emu: Emulator;
  let world: World;
  let handler: (event: unknown, context: Context) => Promise<unknown>;
  const context = {
    getRemainingTimeInMillis: () => 30_000,
    functionName: 'subscriptions',
    awsRequestId: 'test-request',
  } as unknown as Context;

  beforeAll(async () => {
    emu = await startEmulator();
    world = await buildWorld(emu);
    process.env.AWS_ENDPOINT_URL = emu.endpoint;
    process.env.FED_TABLE_NAME = TABLE;
    process.env.FED_API_KEY_SECRET = SECRET_NAME;
    process.env.FED_CONFIG = JSON.stringify({ rateLimit: { ratePerSecond: 10, burst: 40 } });
    ({ handler } = await import('../../functions/subscriptions/handler.js'));
  });
  afterAll(async () => {
    delete process.env.AWS_ENDPOINT_URL;
    await emu?.stop();
  });

  it('subscribes through the default source with the configured table and secret', async () => {
    const result = (await handler(
      {
        action: 'subscribe',
        subscriptionId: 'sub-env',
        apiId: world.apis.orders.id,
        planId: world.plans.basic,
        application: { id: 'app-1', name: 'App one' },
      },
      context,
    )) as { apiKeyId: string; apiKey: string; status: string };
    expect(result.status).toBe('ACTIVE');
    const keys = await allKeys(world.raw);
    expect(keys.map((k) => [k.id, k.value])).toEqual([[result.apiKeyId, result.apiKey]]);
    expect(await keysOnPlan(world.raw, world.seeded.usagePlans.basic!.usagePlanId)).toEqual([
      result.apiKeyId,
    ]);
    expect(emu.proxy.calls.count({ outcome: 'refused' })).toBe(0);
  });

  it('throws typed function errors through middy', async () => {
    await expect(handler({ action: 'get', subscriptionId: 'missing' }, context)).rejects.toMatchObject({
      name: 'NotFoundError',
      message: 'NOT_FOUND: Subscription missing does not exist',
    });
    await expect(handler({ action: 'explode' }, context)).rejects.toMatchObject({ name: 'ValidationError' });
  });
});
