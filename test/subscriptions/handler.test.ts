import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { createSubscriptionsHandler } from '../../functions/subscriptions/handler.js';
import {
  createLogger,
  errorFromInvokePayload,
  noRelay,
  Outbox,
  type OutboxEvent,
  type RelayPublisher,
} from '../../layers/federation-core/src/index.js';
import type { Emulator } from '../support/emulator.js';
import { allKeys, type World, withEmulatorWorld } from './support.js';

/** Captures everything written to stdout (Powertools logs and EMF metrics go there). */
function captureStdout() {
  const chunks: string[] = [];
  const original = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
    return original(chunk as string, ...(rest as []));
  }) as typeof process.stdout.write;
  return {
    text: () => chunks.join(''),
    restore: () => {
      process.stdout.write = original;
    },
  };
}

/** What Lambda would put in the Invoke payload for a thrown error. */
function invokePayloadOf(error: unknown) {
  const e = error as Error;
  return { errorType: e.name, errorMessage: e.message };
}

async function failureOf(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (error) {
    return invokePayloadOf(error);
  }
  throw new Error('expected the handler to throw');
}

describe('subscriptions handler', () => {
  let emu: Emulator;
  let world: World;
  let published: OutboxEvent[];
  let handler: ReturnType<typeof createSubscriptionsHandler>;
  let metrics: Metrics;
  let stdout: ReturnType<typeof captureStdout>;

  withEmulatorWorld((started, built) => {
    emu = started;
    world = built;
    published = [];
    const publisher: RelayPublisher = {
      publishEvents: async (events) => {
        published.push(...events);
      },
      reply: async () => {},
    };
    metrics = new Metrics({ namespace: 'ApigwFederation', serviceName: 'subscriptions' });
    handler = createSubscriptionsHandler({
      service: world.service(),
      outbox: new Outbox(world.table, { retentionDays: 7 }),
      publisher,
      logger: createLogger('subscriptions'),
      metrics,
    });
    stdout = captureStdout();
  });
  afterEach(() => {
    stdout.restore();
  });

  const subscribeEvent = (overrides: Record<string, unknown> = {}) => ({
    action: 'subscribe',
    subscriptionId: 'sub-1',
    apiId: world.apis.pets.id,
    planId: world.plans.gold,
    application: { id: 'app-1', name: 'App one' },
    ...overrides,
  });

  it('subscribes, gets and unsubscribes, and never writes a key value to the logs', async () => {
    const context = { getRemainingTimeInMillis: () => 30_000 };
    const custom = 'CustomValue0123456789abcdef';
    const sub = (await handler(subscribeEvent(), context)) as { apiKey: string; apiKeyId: string };
    const again = await handler(subscribeEvent(), context);
    const other = (await handler(subscribeEvent({ subscriptionId: 'sub-2', apiKey: custom }), context)) as {
      apiKey: string;
    };
    await failureOf(handler(subscribeEvent({ subscriptionId: 'sub-3', apiKey: custom }), context));
    await failureOf(handler(subscribeEvent({ apiKey: `${custom}x` }), context));
    await failureOf(handler(subscribeEvent({ subscriptionId: 'sub-4', apiKey: `${custom}!` }), context));
    const view = await handler({ action: 'get', subscriptionId: 'sub-1' });
    const unsubscribed = await handler({ action: 'unsubscribe', subscriptionId: 'sub-1' });
    metrics.publishStoredMetrics();

    expect(again).toEqual(sub);
    expect(other.apiKey).toBe(custom);
    expect(view).toMatchObject({ subscriptionId: 'sub-1', status: 'ACTIVE', apiKeyId: sub.apiKeyId });
    expect(unsubscribed).toEqual({ subscriptionId: 'sub-1', status: 'REVOKED' });
    const logs = stdout.text();
    expect(logs).toContain('subscribe answered');
    expect(logs).toContain(sub.apiKeyId);
    expect(logs).toContain('"Subscribed"');
    expect(logs).toContain('"ApigwFederation"');
    expect(logs).not.toContain(sub.apiKey);
    expect(logs).not.toContain(custom);
    expect(JSON.stringify(view)).not.toContain(sub.apiKey);
  });

  it('appends the revocation to the outbox and publishes it with its sequence', async () => {
    await handler(subscribeEvent());
    await handler({ action: 'unsubscribe', subscriptionId: 'sub-1' });
    await handler({ action: 'unsubscribe', subscriptionId: 'sub-1' });
    expect(published).toHaveLength(1);
    expect(published[0]).toMatchObject({
      seq: 1,
      event: 'subscription.revoked',
      payload: { subscriptionId: 'sub-1', reason: 'UNSUBSCRIBED' },
    });
    expect(await new Outbox(world.table, { retentionDays: 7 }).listAfter(0)).toHaveLength(1);
  });

  it('tells the control plane on the repeat when the revocation could not be appended after the key was deleted', async () => {
    // The function's outbox through the proxy, where DynamoDB can fail.
    const viaProxy = createSubscriptionsHandler({
      service: world.service(),
      outbox: world.outbox,
      publisher: noRelay,
    });
    await viaProxy(subscribeEvent());
    // DynamoDB refuses the append (every attempt of the SDK's retries), after the key is deleted.
    emu.proxy.setFaults({
      seed: 4,
      rates: { error500: 1 },
      services: ['dynamodb'],
      operations: ['TransactWriteItems'],
    });
    await failureOf(viaProxy({ action: 'unsubscribe', subscriptionId: 'sub-1' }));
    emu.proxy.setFaults(undefined);
    expect(await allKeys(world.raw)).toHaveLength(0);
    // The repeat answers the same and appends the event the failed call could not.
    expect(await viaProxy({ action: 'unsubscribe', subscriptionId: 'sub-1' })).toEqual({
      subscriptionId: 'sub-1',
      status: 'REVOKED',
    });
    expect(await viaProxy({ action: 'unsubscribe', subscriptionId: 'sub-1' })).toMatchObject({
      status: 'REVOKED',
    });
    expect((await world.outbox.listAfter(0)).map((e) => [e.event, e.payload])).toEqual([
      ['subscription.revoked', expect.objectContaining({ subscriptionId: 'sub-1', keyDeleted: true })],
    ]);
    expect(await world.repo.get('sub-1')).toMatchObject({ status: 'REVOKED', keyDeleted: true });
  });

  it('answers the scheduled finish-revocations event as the rule sends it', async () => {
    await handler(subscribeEvent());
    // A revocation of a moment ago is its own hand-over's: the schedule leaves it (and the live key) alone.
    await handler({ action: 'unsubscribe', subscriptionId: 'sub-1' });
    expect(await handler({ action: 'finish-revocations' })).toEqual({
      deleted: [],
      alreadyDeleted: [],
      skipped: [],
      failed: [],
      more: false,
    });
    expect((await failureOf(handler({ action: 'finish-revocations', limit: 0 }))).errorType).toBe(
      'ValidationError',
    );
  });

  it('reports a typed function error that errorFromInvokePayload turns back into code and message', async () => {
    const payload = await failureOf(handler(subscribeEvent({ apiId: 'no-such-api' })));
    expect(payload.errorType).toBe('NotFoundError');
    expect(payload.errorMessage).toMatch(/^NOT_FOUND: API no-such-api is not in the catalog/);
    expect(errorFromInvokePayload(payload)).toEqual({
      code: 'NOT_FOUND',
      message: expect.stringMatching(/^API no-such-api is not in the catalog/),
    });
    metrics.publishStoredMetrics();
    expect(stdout.text()).toContain('"SubscriptionErrors"');
    // Counted by code (EMF `Errors` with a `code` dimension), and not as a fault: no alarm.
    const emf = stdout
      .text()
      .split('\n')
      .filter((l) => l.includes('"_aws"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(emf.find((m) => m.Errors !== undefined)).toMatchObject({ Errors: 1, code: 'NOT_FOUND' });
    expect(emf.find((m) => m.Faults !== undefined)).toMatchObject({ Faults: 0 });
  });

  describe('rejects malformed events as VALIDATION with no AWS call', () => {
    const long = (n: number) => 'a'.repeat(n);
    const cases: Array<[string, (e: ReturnType<typeof subscribeEvent>) => unknown]> = [
      ['null event', () => null],
      ['string event', () => 'subscribe'],
      ['array event', () => [1]],
      ['missing action', ({ action: _a, ...rest }) => rest],
      ['unknown action', (e) => ({ ...e, action: 'delete' })],
      ['action of wrong type', (e) => ({ ...e, action: 1 })],
      ['unknown top-level field', (e) => ({ ...e, admin: true })],
      ['oversized event', (e) => ({ ...e, application: { id: 'a', name: long(9000) } })],
      ['missing subscriptionId', ({ subscriptionId: _s, ...rest }) => rest],
      ['empty subscriptionId', (e) => ({ ...e, subscriptionId: '' })],
      ['subscriptionId too long', (e) => ({ ...e, subscriptionId: long(129) })],
      ['subscriptionId with spaces', (e) => ({ ...e, subscriptionId: 'a b' })],
      ['subscriptionId not a string', (e) => ({ ...e, subscriptionId: 7 })],
      ['missing apiId', ({ apiId: _a, ...rest }) => rest],
      ['apiId not a string', (e) => ({ ...e, apiId: ['x'] })],
      ['apiId with a slash prefix', (e) => ({ ...e, apiId: '/etc' })],
      ['missing planId', ({ planId: _p, ...rest }) => rest],
      ['planId null', (e) => ({ ...e, planId: null })],
      ['missing application', ({ application: _a, ...rest }) => rest],
      ['application not an object', (e) => ({ ...e, application: 'app' })],
      ['application without id', (e) => ({ ...e, application: { name: 'n' } })],
      ['application without name', (e) => ({ ...e, application: { id: 'i' } })],
      ['application name blank', (e) => ({ ...e, application: { id: 'i', name: '   ' } })],
      ['application name too long', (e) => ({ ...e, application: { id: 'i', name: long(257) } })],
      ['application extra field', (e) => ({ ...e, application: { id: 'i', name: 'n', owner: 'x' } })],
      ['apiKey too short', (e) => ({ ...e, apiKey: 'abc123' })],
      ['apiKey too long', (e) => ({ ...e, apiKey: long(129) })],
      ['apiKey with symbols', (e) => ({ ...e, apiKey: 'abcdefghij-klmnopqrst_uvw' })],
      ['apiKey not a string', (e) => ({ ...e, apiKey: 1234567890123456 })],
      ['unsubscribe without subscriptionId', () => ({ action: 'unsubscribe' })],
      [
        'unsubscribe with an extra field',
        () => ({ action: 'unsubscribe', subscriptionId: 's', force: true }),
      ],
      ['get without subscriptionId', () => ({ action: 'get' })],
      ['get with a bad subscriptionId', () => ({ action: 'get', subscriptionId: 'a b' })],
    ];
    for (const [name, build] of cases) {
      it(name, async () => {
        const payload = await failureOf(handler(build(subscribeEvent())));
        expect(payload.errorType).toBe('ValidationError');
        expect(payload.errorMessage).toMatch(/^VALIDATION: Invalid /);
        expect(emu.proxy.calls.count({ service: 'apigateway' })).toBe(0);
        expect(await world.repo.get('sub-1')).toBeUndefined();
      });
    }

    it('does not echo a rejected custom key value in the error', async () => {
      const value = 'SecretLookingValue1234-!';
      const payload = await failureOf(handler(subscribeEvent({ apiKey: value })));
      expect(payload.errorMessage).toContain('apiKey');
      expect(payload.errorMessage).not.toContain(value);
    });
  });
});
