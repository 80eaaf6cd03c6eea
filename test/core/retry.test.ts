import { GetRestApisCommand } from '@aws-sdk/client-api-gateway';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AwsAccessDeniedError,
  AwsError,
  AwsThrottledError,
  backoffDelay,
  type Clock,
  callWithRetry,
  classifyFailure,
  RateLimiter,
  type RetryEvent,
  retryAfterMs,
} from '../../layers/federation-core/src/index.js';
import { type Emulator, startEmulator } from '../support/emulator.js';

function sdkError(name: string, status: number, headers: Record<string, string> = {}) {
  return Object.assign(new Error(name), {
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
    $response: { statusCode: status, headers },
  });
}

/** fn that fails with the given errors in order, then answers 'ok'. */
function failing(...errors: unknown[]) {
  let calls = 0;
  const fn = async () => {
    calls++;
    const e = errors.shift();
    if (e) throw e;
    return 'ok';
  };
  return { fn, calls: () => calls };
}

const noSleep = { sleep: async () => {}, random: () => 0.5 };

describe('classifyFailure', () => {
  it('retries throttling, 5xx and network errors, not client errors', () => {
    expect(classifyFailure(sdkError('TooManyRequestsException', 429))).toBe('throttle');
    expect(classifyFailure(sdkError('InternalFailure', 500))).toBe('server');
    expect(classifyFailure(sdkError('ServiceUnavailableException', 503))).toBe('server');
    expect(classifyFailure(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe(
      'network',
    );
    expect(classifyFailure(sdkError('NotFoundException', 404))).toBeUndefined();
    expect(classifyFailure(sdkError('BadRequestException', 400))).toBeUndefined();
    expect(classifyFailure(sdkError('AccessDeniedException', 403))).toBeUndefined();
    expect(classifyFailure(new TypeError('x is undefined'))).toBeUndefined();
  });
});

describe('retryAfterMs', () => {
  it('reads delta-seconds and HTTP dates from the SDK error', () => {
    expect(retryAfterMs(sdkError('TooManyRequestsException', 429, { 'retry-after': '2' }))).toBe(2000);
    const now = Date.parse('2025-01-01T00:00:00Z');
    const date = new Date(now + 3000).toUTCString();
    expect(retryAfterMs(sdkError('TooManyRequestsException', 429, { 'retry-after': date }), now)).toBe(3000);
    expect(retryAfterMs(sdkError('TooManyRequestsException', 429))).toBeUndefined();
    expect(retryAfterMs(new Error('plain'))).toBeUndefined();
  });
});

describe('callWithRetry', () => {
  it('retries throttles with full-jitter exponential backoff, then succeeds', async () => {
    const { fn, calls } = failing(
      sdkError('TooManyRequestsException', 429),
      sdkError('TooManyRequestsException', 429),
      sdkError('TooManyRequestsException', 429),
    );
    const sleeps: number[] = [];
    const result = await callWithRetry(fn, {
      baseDelayMs: 100,
      maxDelayMs: 300,
      random: () => 0.5,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    expect(result).toBe('ok');
    expect(calls()).toBe(4);
    expect(sleeps).toEqual([50, 100, 150]); // 0.5 × min(300, 100·2^(n-1))
  });

  it('retries 500, 503 and connection resets', async () => {
    const { fn, calls } = failing(
      sdkError('InternalFailure', 500),
      sdkError('ServiceUnavailableException', 503),
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
    );
    await expect(callWithRetry(fn, noSleep)).resolves.toBe('ok');
    expect(calls()).toBe(4);
  });

  it('fails at once on NotFound, BadRequest and AccessDenied, typed', async () => {
    for (const [error, type] of [
      [sdkError('NotFoundException', 404), AwsError],
      [sdkError('BadRequestException', 400), AwsError],
      [sdkError('AccessDeniedException', 403), AwsAccessDeniedError],
    ] as const) {
      const { fn, calls } = failing(error);
      const onRetry: RetryEvent[] = [];
      const rejection = await callWithRetry(fn, { ...noSleep, onRetry: (e) => onRetry.push(e) }).catch(
        (e) => e,
      );
      expect(rejection).toBeInstanceOf(type);
      expect(rejection.cause).toBe(error);
      expect(calls()).toBe(1);
      expect(onRetry).toHaveLength(0);
    }
  });

  it('gives up after maxAttempts with an AwsThrottledError carrying the context', async () => {
    const errors = Array.from({ length: 10 }, () => sdkError('TooManyRequestsException', 429));
    const { fn, calls } = failing(...errors);
    const rejection = await callWithRetry(fn, { ...noSleep, maxAttempts: 3, context: 'GetStages abc' }).catch(
      (e) => e,
    );
    expect(rejection).toBeInstanceOf(AwsThrottledError);
    expect(rejection.message).toContain('GetStages abc');
    expect(calls()).toBe(3);
  });

  it('waits at least the Retry-After when there is no limiter', async () => {
    const { fn } = failing(sdkError('TooManyRequestsException', 429, { 'retry-after': '2' }));
    const sleeps: number[] = [];
    await callWithRetry(fn, { random: () => 0, sleep: async (ms) => void sleeps.push(ms) });
    expect(sleeps).toEqual([2000]);
  });

  it('pauses the account-region bucket for a Retry-After and slows it down', async () => {
    let t = 0;
    const limiterSleeps: number[] = [];
    const clock: Clock = {
      now: () => t,
      sleep: async (ms) => {
        limiterSleeps.push(ms);
        t += ms;
      },
    };
    const limiter = new RateLimiter({ ratePerSecond: 10, burst: 40, clock });
    const { fn } = failing(sdkError('TooManyRequestsException', 429, { 'retry-after': '1' }));
    await callWithRetry(fn, { limiter, random: () => 0, sleep: async () => {} });
    expect(limiterSleeps).toEqual([1000]);
    expect(limiter.currentRate).toBe(7.5); // THROTTLE_BACKOFF × 10
    expect(limiter.throttleCount).toBe(1);
  });

  it('caps the exponential ceiling at maxDelayMs', () => {
    expect(backoffDelay(20, 100, 5000, () => 0.999)).toBeLessThan(5000);
    expect(backoffDelay(1, 100, 5000, () => 0.999)).toBeLessThan(100);
  });
});

describe('callWithRetry against the emulator', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    await emu?.stop();
  });

  it('sees the Retry-After header of a real SDK error and succeeds once the faults stop', async () => {
    const client = emu.apiGateway({ via: 'proxy', maxAttempts: 1 });
    emu.proxy.setFaults({ seed: 1, rates: { throttle429RetryAfter: 1 }, operations: ['GetRestApis'] });
    const events: RetryEvent[] = [];
    let attempts = 0;
    const result = await callWithRetry(
      () => {
        attempts++;
        if (attempts === 3) emu.proxy.setFaults(undefined);
        return client.send(new GetRestApisCommand({ limit: 500 }));
      },
      { sleep: async () => {}, onRetry: (e) => events.push(e) },
    );
    expect(result.items).toEqual([]);
    expect(events.map((e) => [e.reason, e.retryAfterMs])).toEqual([
      ['throttle', 1000],
      ['throttle', 1000],
    ]);
    expect(emu.proxy.calls.countOf('GetRestApis')).toBe(3);
  });

  it('retries a reset connection and a 503 from the proxy', async () => {
    const client = emu.apiGateway({ via: 'proxy', maxAttempts: 1 });
    const reasons: string[] = [];
    let attempts = 0;
    emu.proxy.setFaults({ seed: 1, rates: { reset: 1 }, operations: ['GetRestApis'] });
    await callWithRetry(
      () => {
        attempts++;
        if (attempts === 2)
          emu.proxy.setFaults({ seed: 1, rates: { error503: 1 }, operations: ['GetRestApis'] });
        if (attempts === 3) emu.proxy.setFaults(undefined);
        return client.send(new GetRestApisCommand({}));
      },
      { sleep: async () => {}, onRetry: (e) => reasons.push(e.reason) },
    );
    expect(reasons).toEqual(['network', 'server']);
  });
});
