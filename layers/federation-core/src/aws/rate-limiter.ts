/**
 * Client-side rate limiting for the API Gateway management API, which allows about 10 requests/s with
 * a burst of 40 per account-region. One token bucket per account-region; every call acquires a token
 * first. The bucket adapts: a throttle halves its rate (and a `Retry-After` pauses it), successes
 * restore the configured rate step by step (AIMD), so a run that meets a busier account slows down
 * instead of burning its retries.
 */

/** Time source, injectable so tests run without waiting. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface RateLimiterOptions {
  /** Sustained tokens per second. */
  readonly ratePerSecond: number;
  /** Bucket size: how many calls may go at once after a quiet period. */
  readonly burst: number;
  readonly clock?: Clock;
  /** Lowest rate an adaptive slowdown may reach, default 10% of `ratePerSecond` (at least 0.2/s). */
  readonly minRatePerSecond?: number;
  /** Successes after which the rate grows back by 10% of `ratePerSecond`; default 5. */
  readonly recoverAfter?: number;
}

/**
 * A token bucket with reservations: `acquire()` takes a token now or reserves the next one and waits
 * for it, so concurrent callers are served in arrival order and never exceed the rate together.
 */
export class RateLimiter {
  private readonly clock: Clock;
  private readonly maxRate: number;
  private readonly minRate: number;
  private readonly burst: number;
  private readonly recoverAfter: number;
  private rate: number;
  /** May go negative: outstanding reservations. */
  private tokens: number;
  private last: number;
  private pausedUntil = 0;
  private successes = 0;
  private throttles = 0;

  constructor(options: RateLimiterOptions) {
    if (!(options.ratePerSecond > 0)) throw new RangeError('ratePerSecond must be positive');
    if (!(options.burst >= 1)) throw new RangeError('burst must be at least 1');
    this.clock = options.clock ?? systemClock;
    this.maxRate = options.ratePerSecond;
    this.minRate = Math.min(
      this.maxRate,
      options.minRatePerSecond ?? Math.max(0.2, options.ratePerSecond / 10),
    );
    this.burst = options.burst;
    this.recoverAfter = options.recoverAfter ?? 5;
    this.rate = this.maxRate;
    this.tokens = this.burst;
    this.last = this.clock.now();
  }

  /** Current sustained rate (lower than configured after throttles). */
  get currentRate(): number {
    return this.rate;
  }

  /** Throttles recorded so far. */
  get throttleCount(): number {
    return this.throttles;
  }

  /** Waits until the caller may make one call. */
  async acquire(): Promise<void> {
    const wait = this.reserve();
    if (wait > 0) await this.clock.sleep(wait);
  }

  /** Takes a token only if one is available now and the bucket is not paused. */
  tryAcquire(): boolean {
    this.refill();
    if (this.clock.now() < this.pausedUntil || this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /**
   * AWS throttled a call: halve the rate (not below the minimum) and drop the burst, and when AWS
   * said how long to wait (`Retry-After`), hand out no token before then.
   */
  recordThrottle(retryAfterMs?: number): void {
    this.refill();
    this.throttles++;
    this.successes = 0;
    this.rate = Math.max(this.minRate, this.rate / 2);
    this.tokens = Math.min(this.tokens, 0);
    if (retryAfterMs !== undefined && retryAfterMs > 0) {
      this.pausedUntil = Math.max(this.pausedUntil, this.clock.now() + retryAfterMs);
    }
  }

  /** A call succeeded: after `recoverAfter` successes the rate grows back by a tenth of the maximum. */
  recordSuccess(): void {
    if (this.rate >= this.maxRate) return;
    this.successes++;
    if (this.successes >= this.recoverAfter) {
      this.refill();
      this.successes = 0;
      this.rate = Math.min(this.maxRate, this.rate + this.maxRate / 10);
    }
  }

  /** Reserves one token; returns how long the caller must wait for it (ms). */
  private reserve(): number {
    this.refill();
    const now = this.clock.now();
    this.tokens -= 1;
    const deficitWait = this.tokens >= 0 ? 0 : (-this.tokens / this.rate) * 1000;
    const pauseWait = Math.max(0, this.pausedUntil - now);
    return Math.max(deficitWait, pauseWait);
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed / 1000) * this.rate);
  }
}

/** One RateLimiter per account-region, created on first use with the same settings. */
export class RateLimiterRegistry {
  private readonly limiters = new Map<string, RateLimiter>();

  constructor(private readonly options: RateLimiterOptions) {}

  /** The bucket of `accountId`/`region` (accountId may be a role ARN or `self` before it is known). */
  forTarget(accountId: string, region: string): RateLimiter {
    const key = `${accountId}/${region}`;
    let limiter = this.limiters.get(key);
    if (!limiter) {
      limiter = new RateLimiter(this.options);
      this.limiters.set(key, limiter);
    }
    return limiter;
  }
}
