import { describe, expect, it } from 'vitest';
import { type Clock, RateLimiter, RateLimiterRegistry } from '../../layers/federation-core/src/index.js';

/** A clock that only moves when the test says so; sleeps are recorded and resolve at once. */
function manualClock(): Clock & { t: number; sleeps: number[] } {
  const clock = {
    t: 0,
    sleeps: [] as number[],
    now: () => clock.t,
    sleep: async (ms: number) => {
      clock.sleeps.push(ms);
    },
  };
  return clock;
}

describe('RateLimiter', () => {
  it('lets a full burst through without waiting, then spaces calls at the rate', async () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ ratePerSecond: 2, burst: 3, clock });
    for (let i = 0; i < 5; i++) await limiter.acquire();
    // three immediate tokens, then reservations 500 ms and 1000 ms ahead
    expect(clock.sleeps).toEqual([500, 1000]);
  });

  it('serves concurrent callers in arrival order without exceeding the rate together', async () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ ratePerSecond: 10, burst: 1, clock });
    await Promise.all(Array.from({ length: 5 }, () => limiter.acquire()));
    expect(clock.sleeps.map(Math.round)).toEqual([100, 200, 300, 400]);
  });

  it('refills over time up to the burst only', () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ ratePerSecond: 10, burst: 2, clock });
    expect(limiter.tryAcquire()).toBe(true);
    expect(limiter.tryAcquire()).toBe(true);
    expect(limiter.tryAcquire()).toBe(false);
    clock.t += 10_000;
    expect(limiter.tryAcquire()).toBe(true);
    expect(limiter.tryAcquire()).toBe(true);
    expect(limiter.tryAcquire()).toBe(false);
  });

  it('halves its rate on a throttle and pauses for a Retry-After', () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ ratePerSecond: 10, burst: 40, clock });
    limiter.recordThrottle(2000);
    expect(limiter.currentRate).toBe(5);
    expect(limiter.throttleCount).toBe(1);
    clock.t += 1999;
    expect(limiter.tryAcquire()).toBe(false);
    clock.t += 1;
    expect(limiter.tryAcquire()).toBe(true);
  });

  it('does not slow below its minimum rate', () => {
    const limiter = new RateLimiter({
      ratePerSecond: 10,
      burst: 40,
      clock: manualClock(),
      minRatePerSecond: 2,
    });
    for (let i = 0; i < 20; i++) limiter.recordThrottle();
    expect(limiter.currentRate).toBe(2);
  });

  it('recovers the configured rate step by step after successes', () => {
    const limiter = new RateLimiter({ ratePerSecond: 10, burst: 40, clock: manualClock(), recoverAfter: 2 });
    limiter.recordThrottle();
    expect(limiter.currentRate).toBe(5);
    limiter.recordSuccess();
    expect(limiter.currentRate).toBe(5);
    limiter.recordSuccess();
    expect(limiter.currentRate).toBe(6);
    for (let i = 0; i < 20; i++) limiter.recordSuccess();
    expect(limiter.currentRate).toBe(10);
  });

  it('holds a real-time rate: 30 calls at 50/s with burst 5 take at least 0.5 s', async () => {
    const limiter = new RateLimiter({ ratePerSecond: 50, burst: 5 });
    const start = performance.now();
    await Promise.all(Array.from({ length: 30 }, () => limiter.acquire()));
    expect(performance.now() - start).toBeGreaterThanOrEqual(480);
  });

  it('rejects a non-positive rate', () => {
    expect(() => new RateLimiter({ ratePerSecond: 0, burst: 1 })).toThrow(RangeError);
  });
});

describe('RateLimiterRegistry', () => {
  it('gives one bucket per account-region', () => {
    const registry = new RateLimiterRegistry({ ratePerSecond: 10, burst: 40 });
    const a = registry.forTarget('111122223333', 'us-east-1');
    expect(registry.forTarget('111122223333', 'us-east-1')).toBe(a);
    expect(registry.forTarget('111122223333', 'eu-west-1')).not.toBe(a);
    expect(registry.forTarget('444455556666', 'us-east-1')).not.toBe(a);
  });
});
