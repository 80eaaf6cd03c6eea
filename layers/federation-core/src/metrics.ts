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
  },
} as const;

/** Where a core function counts (Powertools `Metrics`, or a test's recorder). Every metric is a Count. */
export interface MetricsSink {
  addMetric(name: string, unit: 'Count', value: number): void;
}
