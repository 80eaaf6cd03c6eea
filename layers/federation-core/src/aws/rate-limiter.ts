/**
 * Client-side rate limiting for the API Gateway management API, which allows about 10 requests/s with
 * a burst of 40 per account-region. One token bucket per account-region; every call acquires a token
 * first. The bucket adapts: a throttle cuts its rate to {@link THROTTLE_BACKOFF} of what it was (and a
 * `Retry-After` pauses it), successes restore the configured rate step by step (AIMD), so a run that
 * meets a busier account slows down instead of burning its retries.
 *
 * Why not the SDK's adaptive retry mode instead: it only slows down after AWS has answered 429, while
 * this bucket paces calls so that API Gateway's limit is not reached in the first place (a run's
 * every call counts against the same per-account-region limit the operator's own tools share).
 *
 * Why our bucket must run slightly behind the server's even though both have the same rate and burst:
 * the server's bucket is full until our first request *arrives*, ours until we *send* it, so ours
 * refills earlier by the first request's transit time (connection set-up, signing, latency: 9–66 ms
 * locally, a TLS handshake in Lambda). Once the burst is spent, every paced call then reaches the server
 * while its bucket holds slightly less than one token, and the first one with less transit time than
 * that first request is answered 429 (measured: one per account-region per run, at the first paced call
 * after the burst; `bench/trace.ts`). Two guards, each cheap:
 * - the refill a full bucket accrues while its first call is in flight does not count: when that call's
 *   answer comes back (`recordSuccess`/`recordThrottle`/`recordResponse`), the server has surely seen it,
 *   so the bucket drops what it refilled since (costs at most one round trip per exhausted burst);
 * - after the burst, calls are paced at {@link PACING_MARGIN} of the configured rate, so arrival jitter
 *   and a server clock a little slower than ours are absorbed instead of answered 429.
 */

/**
 * Share of the configured rate at which tokens refill (pacing after the burst). 1% below the server's
 * rate: about 1 ms of slack per call at 10/s, which accumulates, against arrival jitter and a server
 * refilling a little slower than nominal; `ratePerSecond`/`burst` stay the user's numbers. The settle
 * above already removed every 429 the benchmark measured, so the margin is kept small: each percent
 * costs about 0.3 s per 300 paced calls.
 */
export const PACING_MARGIN = 0.99;

/** Factor applied to the rate on a throttle (multiplicative decrease, as CUBIC-style adaptive retry). */
export const THROTTLE_BACKOFF = 0.75;

/** Share of the configured rate won back after each `recoverAfter` successes. */
export const RECOVERY_STEP = 0.1;

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
  /** Successes after which the rate grows back by 10% of `ratePerSecond`; default 3. */
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
  /** When a token was taken from a full bucket whose first answer has not come back yet. */
  private anchorAt: number | undefined;
  /** Tokens refilled since `anchorAt` (what a settle takes back). */
  private accruedSinceAnchor = 0;

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
    this.recoverAfter = options.recoverAfter ?? 3;
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
    this.take();
    return true;
  }

  /**
   * AWS answered a call with something else than success or throttle (an error it still counted):
   * only settles the refill of a full bucket's first call in flight.
   */
  recordResponse(): void {
    this.settle();
  }

  /**
   * AWS throttled a call: cut the rate to {@link THROTTLE_BACKOFF} of it (not below the minimum) and
   * drop the burst, and when AWS said how long to wait (`Retry-After`), hand out no token before then.
   */
  recordThrottle(retryAfterMs?: number): void {
    this.settle();
    this.refill();
    this.throttles++;
    this.successes = 0;
    this.rate = Math.max(this.minRate, this.rate * THROTTLE_BACKOFF);
    this.tokens = Math.min(this.tokens, 0);
    if (retryAfterMs !== undefined && retryAfterMs > 0) {
      this.pausedUntil = Math.max(this.pausedUntil, this.clock.now() + retryAfterMs);
    }
  }

  /**
   * A call succeeded: after `recoverAfter` successes the rate grows back by {@link RECOVERY_STEP} of
   * the maximum.
   */
  recordSuccess(): void {
    this.settle();
    if (this.rate >= this.maxRate) return;
    this.successes++;
    if (this.successes >= this.recoverAfter) {
      this.refill();
      this.successes = 0;
      this.rate = Math.min(this.maxRate, this.rate + this.maxRate * RECOVERY_STEP);
    }
  }

  /** Reserves one token; returns how long the caller must wait for it (ms). */
  private reserve(): number {
    this.refill();
    const now = this.clock.now();
    this.take();
    const deficitWait = this.tokens >= 0 ? 0 : (-this.tokens / this.pacedRate()) * 1000;
    const pauseWait = Math.max(0, this.pausedUntil - now);
    return Math.max(deficitWait, pauseWait);
  }

  /** Takes one token (after `refill`); a take from a full bucket anchors the refill on its answer. */
  private take(): void {
    if (this.tokens >= this.burst && this.anchorAt === undefined) {
      this.anchorAt = this.clock.now();
      this.accruedSinceAnchor = 0;
    }
    this.tokens -= 1;
  }

  /**
   * An answer came back: the server has seen the call that anchored the bucket, so the refill accrued
   * since that call left (which the server's still-full bucket may not have got) is taken back.
   */
  private settle(): void {
    if (this.anchorAt === undefined) return;
    this.refill();
    this.anchorAt = undefined;
    this.tokens -= this.accruedSinceAnchor;
    this.accruedSinceAnchor = 0;
  }

  private pacedRate(): number {
    return this.rate * PACING_MARGIN;
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    const before = this.tokens;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed / 1000) * this.pacedRate());
    if (this.anchorAt !== undefined) this.accruedSinceAnchor += this.tokens - before;
  }
}

/** What the retry policy needs of a bucket: a token per attempt, and what AWS answered. */
export interface Limiter {
  acquire(): Promise<void>;
  recordSuccess(): void;
  recordThrottle(retryAfterMs?: number): void;
  recordResponse(): void;
}

/**
 * Several buckets a call must pass together (an operation's own quota and the account-region's):
 * tokens are taken in order, answers are reported to each.
 */
export class LimiterChain implements Limiter {
  constructor(private readonly limiters: readonly Limiter[]) {}

  async acquire(): Promise<void> {
    for (const limiter of this.limiters) await limiter.acquire();
  }

  recordSuccess(): void {
    for (const limiter of this.limiters) limiter.recordSuccess();
  }

  recordThrottle(retryAfterMs?: number): void {
    for (const limiter of this.limiters) limiter.recordThrottle(retryAfterMs);
  }

  recordResponse(): void {
    for (const limiter of this.limiters) limiter.recordResponse();
  }
}

/**
 * API Gateway operations with a quota of their own besides the account's 10 requests/s: `CreateApiKey`
 * and `DeleteApiKey` are limited to 5 requests/s (API Gateway quotas, "creating, deploying and managing
 * an API"). They share one key bucket.
 */
export const KEY_OPERATIONS: ReadonlySet<string> = new Set(['CreateApiKey', 'DeleteApiKey']);

/**
 * One RateLimiter per account-region, created on first use with the same settings, and, when `keys` is
 * set, one key bucket per account-region that {@link KEY_OPERATIONS} pass before the account's.
 */
export class RateLimiterRegistry {
  private readonly limiters = new Map<string, RateLimiter>();
  private readonly keyLimiters = new Map<string, RateLimiter>();

  constructor(
    private readonly options: RateLimiterOptions,
    private readonly keys?: RateLimiterOptions,
  ) {}

  /** The bucket of `accountId`/`region` (accountId may be a role ARN or `self` before it is known). */
  forTarget(accountId: string, region: string): RateLimiter {
    return this.bucket(this.limiters, this.options, `${accountId}/${region}`);
  }

  /** The buckets a call of `operation` passes: the key bucket first for key operations, then the account's. */
  forOperation(accountId: string, region: string, operation: string): Limiter {
    const account = this.forTarget(accountId, region);
    if (!this.keys || !KEY_OPERATIONS.has(operation)) return account;
    return new LimiterChain([this.bucket(this.keyLimiters, this.keys, `${accountId}/${region}`), account]);
  }

  private bucket(map: Map<string, RateLimiter>, options: RateLimiterOptions, key: string): RateLimiter {
    let limiter = map.get(key);
    if (!limiter) {
      limiter = new RateLimiter(options);
      map.set(key, limiter);
    }
    return limiter;
  }
}
