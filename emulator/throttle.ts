/**
 * The API Gateway management API's throttle: one token bucket per account-region (about 10 requests/s
 * sustained, bursts of 40), answered 429 `TooManyRequestsException` when empty. moto never throttles, so
 * without this a client's rate limiter and retry on 429 would go untested. Also measures the arrival rate,
 * so tests can assert that a client stays under the limit. Operations with a quota of their own
 * (`CreateApiKey` and `DeleteApiKey`: 5 requests/s per account) get a second bucket with `operations`.
 */

export interface ThrottleConfig {
  /** Sustained requests per second per account-region (API Gateway management API: about 10). */
  ratePerSecond: number;
  /** Bucket size (API Gateway: about 40). */
  burst: number;
  /** Window over which the sustained rate is measured for the stats, default 5000 ms. */
  sustainWindowMs?: number;
  /** `Retry-After` (seconds) sent with each 429; none by default. */
  retryAfterSeconds?: number;
  /**
   * Per-operation quotas checked after the account-region's bucket, e.g. API Gateway's
   * `{ CreateApiKey: { ratePerSecond: 5, burst: 5 }, DeleteApiKey: { ratePerSecond: 5, burst: 5 } }`.
   */
  operations?: Readonly<Record<string, { ratePerSecond: number; burst: number }>>;
}

/** API Gateway's own quotas of the key operations (5 requests/s per account, no documented burst). */
export const API_KEY_OPERATION_QUOTAS = {
  CreateApiKey: { ratePerSecond: 5, burst: 5 },
  DeleteApiKey: { ratePerSecond: 5, burst: 5 },
} as const;

export interface ThrottleStats {
  /** 429s sent by the token bucket. */
  sent429: number;
  /** Requests admitted by the bucket. */
  admitted: number;
  /**
   * Highest rate of API Gateway requests *arriving* (admitted or not) at one account-region, measured as
   * requests per second over a sliding window of `sustainWindowMs`.
   */
  peakSustainedRate: number;
  /** Same, for requests the bucket admitted. */
  peakAdmittedRate: number;
  byAccountRegion: Record<string, { sent429: number; admitted: number; peakSustainedRate: number }>;
  /** 429s sent by the per-operation quotas, by operation. */
  sent429ByOperation: Record<string, number>;
}

/** Sliding-window rate meter. */
class RateMeter {
  private readonly times: number[] = [];
  private head = 0;
  peak = 0;
  constructor(private readonly windowMs: number) {}
  hit(now: number): void {
    this.times.push(now);
    while (this.head < this.times.length && this.times[this.head]! <= now - this.windowMs) this.head++;
    if (this.head > 1024 && this.head * 2 > this.times.length) {
      this.times.splice(0, this.head);
      this.head = 0;
    }
    const rate = (this.times.length - this.head) / (this.windowMs / 1000);
    if (rate > this.peak) this.peak = rate;
  }
}

interface Bucket {
  tokens: number;
  last: number;
  sent429: number;
  admitted: number;
  arrivals: RateMeter;
  admittedMeter: RateMeter;
}

export interface Throttle {
  /** Replaces the configuration and empties the buckets; `undefined` turns the throttle off. */
  set(config: ThrottleConfig | undefined): void;
  /**
   * Takes a token from the account-region's bucket, then from the operation's quota when it has one;
   * `false` = answer 429. Always `true` when off.
   */
  take(accountRegion: string, operation?: string): boolean;
  stats(): ThrottleStats;
  /** Forgets the buckets and their counters (the configuration stays). */
  resetStats(): void;
  /** Headers of a 429 (its `Retry-After`, when configured). */
  headers(): Record<string, string>;
}

function bucketOf(map: Map<string, Bucket>, key: string, burst: number, now: number, windowMs: number) {
  let bucket = map.get(key);
  if (!bucket) {
    bucket = {
      tokens: burst,
      last: now,
      sent429: 0,
      admitted: 0,
      arrivals: new RateMeter(windowMs),
      admittedMeter: new RateMeter(windowMs),
    };
    map.set(key, bucket);
  }
  return bucket;
}

/** Refills `bucket` at `limits` and takes a token if it holds one. */
function admit(bucket: Bucket, limits: { ratePerSecond: number; burst: number }, now: number): boolean {
  bucket.tokens = Math.min(limits.burst, bucket.tokens + ((now - bucket.last) / 1000) * limits.ratePerSecond);
  bucket.last = now;
  bucket.arrivals.hit(now);
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    bucket.admitted++;
    bucket.admittedMeter.hit(now);
    return true;
  }
  bucket.sent429++;
  return false;
}

export function createThrottle(): Throttle {
  let config: ThrottleConfig | undefined;
  let buckets = new Map<string, Bucket>();
  let operationBuckets = new Map<string, Bucket>();
  let sent429ByOperation: Record<string, number> = {};
  return {
    set: (next) => {
      config = next;
      buckets = new Map();
      operationBuckets = new Map();
      sent429ByOperation = {};
    },
    take: (accountRegion, operation) => {
      if (!config) return true;
      const now = performance.now();
      const windowMs = config.sustainWindowMs ?? 5000;
      const bucket = bucketOf(buckets, accountRegion, config.burst, now, windowMs);
      if (!admit(bucket, config, now)) return false;
      const quota = operation === undefined ? undefined : config.operations?.[operation];
      if (!quota || operation === undefined) return true;
      const own = bucketOf(operationBuckets, `${accountRegion}/${operation}`, quota.burst, now, windowMs);
      if (admit(own, quota, now)) return true;
      sent429ByOperation[operation] = (sent429ByOperation[operation] ?? 0) + 1;
      return false;
    },
    stats: () => {
      const out: ThrottleStats = {
        sent429: 0,
        admitted: 0,
        peakSustainedRate: 0,
        peakAdmittedRate: 0,
        byAccountRegion: {},
        sent429ByOperation: { ...sent429ByOperation },
      };
      for (const b of operationBuckets.values()) out.sent429 += b.sent429;
      for (const [key, b] of buckets) {
        out.sent429 += b.sent429;
        out.admitted += b.admitted;
        out.peakSustainedRate = Math.max(out.peakSustainedRate, b.arrivals.peak);
        out.peakAdmittedRate = Math.max(out.peakAdmittedRate, b.admittedMeter.peak);
        out.byAccountRegion[key] = {
          sent429: b.sent429,
          admitted: b.admitted,
          peakSustainedRate: b.arrivals.peak,
        };
      }
      return out;
    },
    resetStats: () => {
      buckets = new Map();
      operationBuckets = new Map();
      sent429ByOperation = {};
    },
    headers: (): Record<string, string> =>
      config?.retryAfterSeconds === undefined ? {} : { 'retry-after': String(config.retryAfterSeconds) },
  };
}
