import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  API_KEY_VALUE,
  ConfigError,
  canonicalRequest,
  DERIVED_KEY_LENGTH,
  ErrorCode,
  errorFromInvokePayload,
  keyMaterial,
  NotFoundError,
  parseSubscriptionsEvent,
  type SubscriptionRecord,
  toInvokeError,
  toView,
  ValidationError,
} from '../../layers/federation-core/src/index.js';

const secretA = 'a'.repeat(16) + 'b'.repeat(16) + 'c'.repeat(16);
const secretB = 'z'.repeat(48);

describe('keyMaterial', () => {
  it('derives the same 40-character alphanumeric value for the same subscription and generation', () => {
    const m = keyMaterial('v1', secretA);
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 128 }), fc.nat(100), (id, gen) => {
        const value = m.deriveApiKey(id, gen);
        expect(value).toHaveLength(DERIVED_KEY_LENGTH);
        expect(value).toMatch(API_KEY_VALUE);
        expect(keyMaterial('v1', secretA).deriveApiKey(id, gen)).toBe(value);
      }),
    );
  });

  it('derives different values for another subscription, generation or secret', () => {
    const a = keyMaterial('v1', secretA);
    const b = keyMaterial('v2', secretB);
    expect(a.deriveApiKey('s1', 0)).not.toBe(a.deriveApiKey('s2', 0));
    expect(a.deriveApiKey('s1', 0)).not.toBe(a.deriveApiKey('s1', 1));
    expect(a.deriveApiKey('s1', 0)).not.toBe(b.deriveApiKey('s1', 0));
    expect(a.digest('x')).not.toBe(b.digest('x'));
    expect(a.digest('x')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('rejects a secret shorter than 32 characters as CONFIG', () => {
    expect(() => keyMaterial('v1', 'short')).toThrow(ConfigError);
  });
});

describe('toView', () => {
  const record: SubscriptionRecord = {
    subscriptionId: 's',
    apiId: 'a',
    planId: 'p',
    usagePlanId: 'up1',
    accountId: '123456789012',
    region: 'us-east-1',
    roleArn: 'arn:aws:iam::123456789012:role/member',
    application: { id: 'i', name: 'n' },
    status: 'ACTIVE',
    apiKeyId: 'k1',
    keyMode: 'derived',
    keyGeneration: 1,
    lostKeyGenerations: [0],
    secretVersionId: 'v1',
    requestHash: 'f'.repeat(64),
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T00:00:01.000Z',
    attempt: 2,
    leaseOwner: 'owner-token',
    leaseExpiresAt: 1,
  };

  it('leaves out sweptAt and sweptKeys of a record never swept', () => {
    const view = toView(record);
    expect(view).not.toHaveProperty('sweptAt');
    expect(view).not.toHaveProperty('sweptKeys');
    expect(view.lostKeys).toBe(1);
  });

  it('shows sweptAt and sweptKeys when present, and no hash, secret version or lease', () => {
    const swept = { ...record, lostKeyGenerations: undefined, sweptAt: record.updatedAt, sweptKeys: 0 };
    const view = toView(swept);
    expect(view).toMatchObject({ sweptAt: record.updatedAt, sweptKeys: 0, lostKeys: 0, attempts: 2 });
    const text = JSON.stringify(view);
    for (const hidden of [record.requestHash, 'owner-token', 'v1', 'leaseExpiresAt', record.roleArn!]) {
      expect(text).not.toContain(hidden);
    }
  });
});

describe('canonicalRequest', () => {
  it('changes when any field a repeat must match changes', () => {
    const base = { subscriptionId: 's', apiId: 'a', planId: 'p', application: { id: 'i', name: 'n' } };
    const variants = [
      { ...base, apiId: 'b' },
      { ...base, planId: 'q' },
      { ...base, application: { id: 'j', name: 'n' } },
      { ...base, application: { id: 'i', name: 'm' } },
      { ...base, apiKey: 'x'.repeat(20) },
    ];
    for (const v of variants) expect(canonicalRequest(v)).not.toBe(canonicalRequest(base));
  });
});

describe('errorFromInvokePayload', () => {
  it('round-trips every typed error thrown by toInvokeError', () => {
    for (const code of Object.values(ErrorCode)) {
      if (code === ErrorCode.INTERNAL) continue;
      const thrown = toInvokeError(new NotFoundError('x'), 'ctx');
      expect(thrown.name).toBe('NotFoundError');
      const err = Object.assign(new Error(`${code}: something: with colons`), { name: 'X' });
      expect(errorFromInvokePayload({ errorType: err.name, errorMessage: err.message })).toEqual({
        code,
        message: 'something: with colons',
      });
    }
  });

  it('maps a runtime crash or timeout to INTERNAL without its message', () => {
    const timeout = { errorMessage: '2030-01-01T00:00:00.000Z abc Task timed out after 30.03 seconds' };
    expect(errorFromInvokePayload(timeout)).toEqual({
      code: 'INTERNAL',
      message: 'The subscriptions function failed (unknown)',
    });
    expect(
      errorFromInvokePayload({ errorType: 'TypeError', errorMessage: 'x is undefined at /var/task' }),
    ).toEqual({
      code: 'INTERNAL',
      message: 'The subscriptions function failed (TypeError)',
    });
    expect(errorFromInvokePayload(null).code).toBe('INTERNAL');
    expect(errorFromInvokePayload({ errorMessage: 'INTERNAL: leaked detail' }).message).not.toContain(
      'leaked',
    );
  });

  it('hides the message of an unknown error thrown by the handler', () => {
    const thrown = toInvokeError(new TypeError('secret internals'), 'subscriptions');
    expect(thrown.message).toBe('INTERNAL: subscriptions: internal error');
    expect(errorFromInvokePayload({ errorType: thrown.name, errorMessage: thrown.message }).code).toBe(
      'INTERNAL',
    );
  });
});

describe('parseSubscriptionsEvent', () => {
  it('accepts the three actions', () => {
    expect(parseSubscriptionsEvent({ action: 'get', subscriptionId: 's' })).toEqual({
      action: 'get',
      subscriptionId: 's',
    });
    expect(
      parseSubscriptionsEvent({
        action: 'subscribe',
        subscriptionId: 's',
        apiId: 'a',
        planId: 'p',
        application: { id: 'i', name: ' n ' },
      }),
    ).toMatchObject({ application: { id: 'i', name: 'n' } });
  });

  it('names the bad field and what was expected', () => {
    try {
      parseSubscriptionsEvent({ action: 'unsubscribe', subscriptionId: 'a b' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as Error).message).toContain('event.subscriptionId');
      expect((error as Error).message).toContain('expected letters, digits');
    }
  });
});
