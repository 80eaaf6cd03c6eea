import { describe, expect, it } from 'vitest';
import {
  type Clock,
  PACING_MARGIN,
  RateLimiter,
  RateLimiterRegistry,
  THROTTLE_BACKOFF,
} from '../../layers/federation-core/src/index.js';

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
    // three immediate tokens, then reservations 500 ms and 1000 ms ahead, paced at PACING_MARGIN
    expect(clock.sleeps).toHaveLength(2);
    expect(clock.sleeps[0]).toBeCloseTo(500 / PACING_MARGIN, 6);
    expect(clock.sleeps[1]).toBeCloseTo(1000 / PACING_MARGIN, 6);
  });

  it('serves concurrent callers in arrival order without exceeding the rate together', async () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ ratePerSecond: 10, burst: 1, clock });
    await Promise.all(Array.from({ length: 5 }, () => limiter.acquire()));
    expect(clock.sleeps.map((ms) => Math.round(ms * PACING_MARGIN))).toEqual([100, 200, 300, 400]);
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

  it('cuts its rate to 75% on a throttle and pauses for a Retry-After', () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ ratePerSecond: 10, burst: 40, clock });
    limiter.recordThrottle(2000);
    expect(THROTTLE_BACKOFF).toBe(0.75);
    expect(limiter.currentRate).toBe(7.5);
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
    expect(limiter.currentRate).toBe(7.5);
    limiter.recordSuccess();
    expect(limiter.currentRate).toBe(7.5);
    limiter.recordSuccess();
    expect(limiter.currentRate).toBe(8.5);
    for (let i = 0; i < 20; i++) limiter.recordSuccess();
    expect(limiter.currentRate).toBe(10);
  });

  it('wins back a tenth of the configured rate every 3 successes by default', () => {
    const limiter = new RateLimiter({ ratePerSecond: 10, burst: 40, clock: manualClock() });
    limiter.recordThrottle();
    limiter.recordThrottle();
    expect(limiter.currentRate).toBeCloseTo(5.625, 9);
    limiter.recordSuccess();
    limiter.recordSuccess();
    expect(limiter.currentRate).toBeCloseTo(5.625, 9);
    limiter.recordSuccess();
    expect(limiter.currentRate).toBeCloseTo(6.625, 9);
    for (let i = 0; i < 12; i++) limiter.recordSuccess();
    expect(limiter.currentRate).toBe(10);
  });

  it('takes back the refill a full bucket accrued while its first call was in flight', async () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ ratePerSecond: 10, burst: 2, clock });
    await limiter.acquire(); // from a full bucket: the server's bucket stays full until the call arrives
    clock.t += 50; // answer after 50 ms: ~0.49 token refilled that the server may not have
    limiter.recordSuccess();
    await limiter.acquire(); // the second token of the burst
    await limiter.acquire();
    // a whole token to wait for, not the 0.51 left if the in-flight refill had counted
    expect(clock.sleeps).toHaveLength(1);
    expect(clock.sleeps[0]).toBeCloseTo(100 / PACING_MARGIN, 6);
  });

  it('settles the in-flight refill on any answer, and only once', async () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ ratePerSecond: 10, burst: 2, clock });
    await limiter.acquire();
    clock.t += 50;
    limiter.recordResponse(); // e.g. a 404: AWS saw the call
    limiter.recordSuccess(); // nothing more to take back
    await limiter.acquire();
    await limiter.acquire();
    expect(clock.sleeps[0]).toBeCloseTo(100 / PACING_MARGIN, 6);
  });

  it('sends no call early to a server bucket of the same rate and burst that starts at the first arrival', async () => {
    // Discrete-event model of the benchmark's finding: one caller, the first call takes 20 ms to reach
    // the server (connection set-up), every later one 0.5 ms, answers 2 ms after arrival.
    let t = 0;
    const clock: Clock = {
      now: () => t,
      sleep: async (ms) => {
        t += ms;
      },
    };
    const limiter = new RateLimiter({ ratePerSecond: 10, burst: 40, clock });
    let server: { tokens: number; last: number } | undefined;
    let throttled = 0;
    const calls = 160;
    for (let i = 0; i < calls; i++) {
      await limiter.acquire();
      const arrival = t + (i === 0 ? 20 : 0.5);
      server ??= { tokens: 40, last: arrival };
      server.tokens = Math.min(40, server.tokens + ((arrival - server.last) / 1000) * 10);
      server.last = arrival;
      t = arrival + 2;
      if (server.tokens >= 1) {
        server.tokens -= 1;
        limiter.recordSuccess();
      } else {
        throttled++;
        limiter.recordThrottle();
      }
    }
    expect(throttled).toBe(0);
    // and it still runs close to the rate: (160 − 40) calls at 10/s ≈ 12 s
    expect(t).toBeLessThan(((calls - 40) / (10 * PACING_MARGIN)) * 1000 + 200);
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
