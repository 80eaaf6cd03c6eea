import { ErrorCode } from './errors.js';

/**
 * The EMF metrics the functions publish (namespace `ApigwFederation`, dimension `service`, unit Count):
 * one contract shared by the handlers that emit them and the CDK dashboard and alarms that read them.
 */
export const METRICS_NAMESPACE = 'ApigwFederation';

export const FEDERATION_METRICS = {
  discovery: {
    runs: 'Runs',
    partialRuns: 'PartialRuns',
    failedRuns: 'FailedRuns',
    apiCalls: 'ApiCalls',
    throttles: 'Throttles',
    apisUpserted: 'ApisUpserted',
    apisRemoved: 'ApisRemoved',
  },
  subscriptions: {
    created: 'Subscribed',
    revoked: 'Unsubscribed',
    failed: 'SubscriptionErrors',
    lostKeysDeleted: 'LostKeysDeleted',
    /** Keys of revoked subscriptions deleted by `revoke-keys` (plan removals). */
    revokedKeysDeleted: 'RevokedKeysDeleted',
  },
} as const;

/**
 * Error metrics of every function that answers with typed errors: `Errors` with dimensions
 * `service` and `code` (one per failure), and `Faults` with `service` alone when the code is one of the
 * agent's own faults ({@link FAULT_CODES}). Alarms watch `Faults`; client mistakes are only counted.
 */
export const ERROR_METRICS = { errors: 'Errors', faults: 'Faults' } as const;

/**
 * Codes that mean the agent (or its deployment) failed: a bug, AWS refusing or failing a call after the
 * retries, a configuration that cannot work. VALIDATION, NOT_FOUND, CONFLICT, UNAUTHORIZED and BUSY are
 * the caller's mistakes or a state the caller retries: they never page anyone.
 */
export const FAULT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCode.INTERNAL,
  ErrorCode.AWS_ERROR,
  ErrorCode.AWS_ACCESS_DENIED,
  ErrorCode.AWS_THROTTLED,
  ErrorCode.CONFIG,
]);

export function isFaultCode(code: ErrorCode): boolean {
  return FAULT_CODES.has(code);
}

/**
 * Where a core function counts (Powertools `Metrics`, or a test's recorder). Every metric is a Count.
 * `singleMetric` (Powertools) publishes a metric with dimensions of its own: `Errors` by `code`.
 */
export interface MetricsSink {
  addMetric(name: string, unit: 'Count', value: number): void;
  singleMetric?(): {
    addDimension(name: string, value: string): void;
    addMetric(name: string, unit: 'Count', value: number): void;
  };
}

/** Counts one failure: `Errors` by code (a metric of its own, with the `code` dimension) and `Faults`. */
export function countError(metrics: MetricsSink | undefined, code: ErrorCode): void {
  if (!metrics) return;
  const byCode = metrics.singleMetric?.();
  if (byCode) {
    byCode.addDimension('code', code);
    byCode.addMetric(ERROR_METRICS.errors, 'Count', 1);
  }
  metrics.addMetric(ERROR_METRICS.faults, 'Count', isFaultCode(code) ? 1 : 0);
}
