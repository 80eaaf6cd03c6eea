/**
 * The fault mix of the reliability scenarios: 30 % of API Gateway calls fail — 429 with and without
 * Retry-After, 500/502/503, connection resets — injected by the fidelity proxy.
 */
export const THIRTY_PERCENT_FAULTS = {
  throttle429: 0.08,
  throttle429RetryAfter: 0.04,
  error500: 0.05,
  error502: 0.03,
  error503: 0.04,
  reset: 0.06,
} as const;
