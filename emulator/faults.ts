/**
 * Seeded fault injection: makes the proxy answer a share of requests with the failures real AWS produces
 * under load or outage (429 with and without `Retry-After`, 500/502/503, reset connections, added latency),
 * so retry and resilience code is exercised against moto, which never fails. A seed reproduces the faults
 * exactly for the same request sequence.
 */
import type { RequestIdentity } from './operations.js';

export interface FaultRates {
  /** 429 TooManyRequestsException without Retry-After. */
  throttle429?: number;
  /** 429 TooManyRequestsException with `Retry-After: 1`. */
  throttle429RetryAfter?: number;
  error500?: number;
  error502?: number;
  error503?: number;
  /** The connection is destroyed without an answer. */
  reset?: number;
  /**
   * 409 ConflictException "Unable to complete operation due to concurrent modification": what API
   * Gateway answers to overlapping writes it serialises per account-region (e.g. `CreateUsagePlanKey`).
   * Transient: nothing was written. Only for `apigateway` (other services answer their own kinds).
   */
  conflict409?: number;
}

export type FaultKind = keyof FaultRates;

export interface FaultConfig {
  /** PRNG seed: the same seed and the same request sequence give the same faults. */
  seed: number;
  /** Probability per request of each fault kind; their sum must be ≤ 1. */
  rates: FaultRates;
  /** Added latency per matching request: fixed, or uniformly drawn from [min, max]. */
  latencyMs?: number | { min: number; max: number };
  /** Only these operation names are affected (all operations of `services` when omitted). */
  operations?: readonly string[];
  /** Only these services are affected; default `['apigateway']`. */
  services?: readonly string[];
  /** Only requests of these account-regions (`<accountId>/<region>`) are affected; all when omitted. */
  accountRegions?: readonly string[];
}

/** mulberry32: a tiny, fast, seedable PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const FAULT_KINDS: readonly FaultKind[] = [
  'throttle429',
  'throttle429RetryAfter',
  'error500',
  'error502',
  'error503',
  'reset',
  // Last, so adding it left the draws of the kinds above (and the seeds' fault sequences) unchanged.
  'conflict409',
];

/** What to do to one request: an optional fault and a delay before it (or before handling it normally). */
export interface FaultDecision {
  kind?: FaultKind;
  delayMs: number;
}

/** API Gateway's message of a 409 for overlapping writes (the same for every operation). */
export const CONCURRENT_MODIFICATION_MESSAGE =
  'Unable to complete operation due to concurrent modification. Please try again later.';

/** Fault → (status, error code) per protocol family: API Gateway throttles with 429, JSON/query services with 400. */
export function faultShape(
  kind: FaultKind,
  service: string,
): { status: number; code: string; message: string } {
  switch (kind) {
    case 'throttle429':
    case 'throttle429RetryAfter':
      return service === 'apigateway'
        ? { status: 429, code: 'TooManyRequestsException', message: 'Too Many Requests' }
        : { status: 400, code: 'ThrottlingException', message: 'Rate exceeded' };
    case 'conflict409':
      return {
        status: 409,
        code: 'ConflictException',
        message: CONCURRENT_MODIFICATION_MESSAGE,
      };
    case 'error500':
      return { status: 500, code: 'InternalFailure', message: 'Internal server error (injected)' };
    case 'error502':
      return { status: 502, code: 'ServiceUnavailableException', message: 'Bad gateway (injected)' };
    default:
      return { status: 503, code: 'ServiceUnavailableException', message: 'Service unavailable (injected)' };
  }
}

export interface FaultInjector {
  /** Replaces the configuration (and restarts the PRNG from its seed); `undefined` turns faults off. */
  set(config: FaultConfig | undefined): void;
  /** Decides the fault and latency for one request (of `accountId`, when known). */
  pick(identity: RequestIdentity, accountId?: string): FaultDecision;
}

export function createFaultInjector(): FaultInjector {
  let faults: { config: FaultConfig; random: () => number } | undefined;
  return {
    set: (config) => {
      if (config) {
        const sum = FAULT_KINDS.reduce((s, k) => s + (config.rates[k] ?? 0), 0);
        if (sum > 1) throw new Error(`fault rates sum to ${sum}, more than 1`);
      }
      faults = config ? { config, random: mulberry32(config.seed) } : undefined;
    },
    pick: (identity, accountId) => {
      if (!faults) return { delayMs: 0 };
      const { config, random } = faults;
      const services = config.services ?? ['apigateway'];
      if (!services.includes(identity.service)) return { delayMs: 0 };
      if (config.operations && !config.operations.includes(identity.operation)) return { delayMs: 0 };
      if (config.accountRegions && !config.accountRegions.includes(`${accountId}/${identity.region}`)) {
        return { delayMs: 0 };
      }
      // Always draw the same number of values per matching request, so a seed reproduces exactly.
      const r = random();
      const l = random();
      let delayMs = 0;
      if (typeof config.latencyMs === 'number') delayMs = config.latencyMs;
      else if (config.latencyMs)
        delayMs = config.latencyMs.min + l * (config.latencyMs.max - config.latencyMs.min);
      let acc = 0;
      for (const kind of FAULT_KINDS) {
        acc += config.rates[kind] ?? 0;
        if (r < acc) return { kind, delayMs };
      }
      return { delayMs };
    },
  };
}
