/**
 * Retry policy for AWS management calls: every attempt takes a token from the account-region's
 * bucket, transient failures (throttling, 5xx, network) are retried with full-jitter exponential
 * backoff, `Retry-After` is honoured, and client errors (NotFound, BadRequest, AccessDenied, ...) fail
 * at once. The final failure is a typed FederationError.
 */
import {
  awsErrorName,
  awsHttpStatus,
  type FederationError,
  isThrottle,
  toFederationError,
} from '../errors.js';
import type { Limiter } from './rate-limiter.js';

/** Why a failure is worth another attempt; `undefined` from `classifyFailure` means it is not. */
export type RetryReason = 'throttle' | 'server' | 'network' | 'conflict';

/**
 * API Gateway's 409 for overlapping writes it serialises per account-region ("Unable to complete
 * operation due to concurrent modification. Please try again later."): transient, nothing was written.
 * Any other 409 (`ConflictException` "API Key already exists", ...) is an answer, not a transient.
 */
export function isConcurrentModification(error: unknown): boolean {
  if (awsErrorName(error) !== 'ConflictException' && awsHttpStatus(error) !== 409) return false;
  const message = (error as { message?: unknown } | null | undefined)?.message;
  return typeof message === 'string' && /concurrent modification/i.test(message);
}

export interface RetryEvent {
  /** The attempt that failed (1-based). */
  readonly attempt: number;
  readonly reason: RetryReason;
  /** How long the policy waits before the next attempt (besides the limiter). */
  readonly delayMs: number;
  /** `Retry-After` sent by AWS, in ms, when there was one. */
  readonly retryAfterMs?: number;
  readonly error: unknown;
}

export interface RetryOptions {
  /** The account-region's bucket; each attempt acquires a token and throttles slow it down. */
  readonly limiter?: Limiter;
  /** Attempts in all, including the first. Default 6. */
  readonly maxAttempts?: number;
  /** Backoff base: attempt n waits a random time in [0, min(maxDelayMs, baseDelayMs·2^(n-1))]. Default 100. */
  readonly baseDelayMs?: number;
  /** Backoff cap. Default 5000. */
  readonly maxDelayMs?: number;
  /** Longest `Retry-After` honoured; longer values are cut to this. Default 30000. */
  readonly maxRetryAfterMs?: number;
  /** Called before each retry (metrics, logs). */
  readonly onRetry?: (event: RetryEvent) => void;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Uniform [0, 1); injectable for deterministic tests. */
  readonly random?: () => number;
  /** Prefix of the final error's message, e.g. `GetStages abc123`. Default `AWS call`. */
  readonly context?: string;
}

const NETWORK_ERROR_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
]);
const NETWORK_ERROR_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'NetworkingError',
]);

/**
 * Classifies a failure: throttling, server (5xx), network errors and a concurrent-modification 409
 * are transient; anything else is not.
 */
export function classifyFailure(error: unknown): RetryReason | undefined {
  if (isThrottle(error)) return 'throttle';
  if (isConcurrentModification(error)) return 'conflict';
  const status = awsHttpStatus(error);
  if (status !== undefined && status >= 500) return 'server';
  if (status !== undefined && status >= 400) return undefined;
  const e = error as { code?: unknown; $fault?: unknown } | null | undefined;
  if (typeof e?.code === 'string' && NETWORK_ERROR_CODES.has(e.code)) return 'network';
  const name = awsErrorName(error);
  if (name !== undefined && NETWORK_ERROR_NAMES.has(name)) return 'network';
  if (e?.$fault === 'server') return 'server';
  return undefined;
}

/**
 * The `Retry-After` of an SDK v3 error (`$response.headers['retry-after']`), in ms: delta-seconds or an
 * HTTP date. Undefined when absent or unreadable.
 */
export function retryAfterMs(error: unknown, nowMs: number = Date.now()): number | undefined {
  const headers = (error as { $response?: { headers?: Record<string, string | undefined> } } | undefined)
    ?.$response?.headers;
  if (!headers) return undefined;
  const value = headers['retry-after'] ?? headers['Retry-After'];
  if (value === undefined || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

/** Full-jitter backoff delay for a failed attempt (1-based). */
export function backoffDelay(attempt: number, baseDelayMs: number, maxDelayMs: number, random: () => number) {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(random() * ceiling);
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Calls `fn` until it succeeds, fails with a non-transient error, or `maxAttempts` is reached.
 * Throws the last failure as a FederationError (`AwsThrottledError`, `AwsAccessDeniedError`,
 * `AwsError`, ...), the SDK error kept as `cause`.
 */
export async function callWithRetry<T>(fn: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const maxAttempts = Math.max(1, options.maxAttempts ?? 6);
  const baseDelayMs = options.baseDelayMs ?? 100;
  const maxDelayMs = options.maxDelayMs ?? 5000;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 30_000;
  const sleep = options.sleep ?? defaultSleep;
  const random = options.random ?? Math.random;
  const limiter = options.limiter;

  for (let attempt = 1; ; attempt++) {
    if (limiter) await limiter.acquire();
    try {
      const result = await fn();
      limiter?.recordSuccess();
      return result;
    } catch (error) {
      const reason = classifyFailure(error);
      // The call reached AWS (an answer, not a network failure): settles the bucket's refill anchor.
      if (reason !== 'throttle' && reason !== 'network') limiter?.recordResponse();
      if (reason === undefined || attempt >= maxAttempts) {
        throw toFederationError(error, options.context ?? 'AWS call') as FederationError;
      }
      const after = retryAfterMs(error);
      const honoured = after === undefined ? undefined : Math.min(after, maxRetryAfterMs);
      if (reason === 'throttle') limiter?.recordThrottle(honoured);
      const jitter = backoffDelay(attempt, baseDelayMs, maxDelayMs, random);
      // A throttle's Retry-After pauses the bucket itself (every caller of the account-region waits),
      // so the retry sleeps the jitter and then waits for the bucket; otherwise it sleeps until at
      // least the Retry-After.
      const pausedByLimiter = limiter !== undefined && reason === 'throttle';
      const delayMs = pausedByLimiter || honoured === undefined ? jitter : Math.max(jitter, honoured);
      options.onRetry?.({ attempt, reason, delayMs, retryAfterMs: honoured, error });
      if (delayMs > 0) await sleep(delayMs);
    }
  }
}
