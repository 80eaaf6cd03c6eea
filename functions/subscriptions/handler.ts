/**
 * subscriptions: `{ action: 'subscribe' | 'unsubscribe' | 'get' | 'sweep', ... }`, invoked by the relay
 * or by an operator with `aws lambda invoke` (`sweep`, the opt-in lost-key sweeper, by an operator
 * only). The core's `runSubscriptionsFunction` validates the event (strict, size-limited), answers it,
 * and appends and publishes revocations. A failure is thrown as a function error: `errorType` is the
 * typed error's class name, `errorMessage` is `"<CODE>: <message>"` (see `errorFromInvokePayload`).
 */
import {
  functionComposition,
  injectLambdaContext,
  METRICS_NAMESPACE,
  once,
  runSubscriptionsFunction,
  type SubscriptionsFunctionDeps,
  type SubscriptionsResult,
  sweepLostKeys,
} from '@apigw-federation/core';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';

export type { SubscriptionsResult } from '@apigw-federation/core';
export type SubscriptionsHandlerDeps = SubscriptionsFunctionDeps;

/** The handler without its middy wiring: tests and the local runtime pass their own deps. */
export function createSubscriptionsHandler(deps: SubscriptionsHandlerDeps) {
  return (
    event: unknown,
    context?: Pick<Context, 'getRemainingTimeInMillis'>,
  ): Promise<SubscriptionsResult> =>
    runSubscriptionsFunction(deps, event, context?.getRemainingTimeInMillis?.());
}

const { root, logger } = functionComposition('subscriptions');
const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'subscriptions' });
const run = once(() => {
  const { sweeper, ...subscriptions } = root.subscriptions();
  return createSubscriptionsHandler({
    ...subscriptions,
    logger,
    metrics,
    sweep: (r) => sweepLostKeys(sweeper, r),
  });
});

export const handler = middy((event: unknown, context: Context) => run()(event, context))
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
