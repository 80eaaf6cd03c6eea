/**
 * subscriptions: `{ action: 'subscribe' | 'unsubscribe' | 'get' | 'sweep', ... }`, invoked by the relay
 * or by an operator with `aws lambda invoke` (`sweep`, the opt-in lost-key sweeper, by an operator
 * only). Validates the event (strict, size-limited), calls the core, and returns its answer. A failure
 * is thrown as a function error: `errorType` is the typed error's class name, `errorMessage` is
 * `"<CODE>: <message>"` (see `errorFromInvokePayload`). Revocations are appended to the outbox and
 * published to connected control planes.
 */

import {
  AwsClientFactory,
  createLogger,
  createSubscriptionsWiring,
  FEDERATION_METRICS,
  injectLambdaContext,
  isSweepEvent,
  type Logger,
  loadConfig,
  METRICS_NAMESPACE,
  type NewEvent,
  type Outbox,
  once,
  parseSubscriptionsEvent,
  parseSweepEvent,
  type RelayPublisher,
  type SubscribeResult,
  type SubscriptionService,
  type SubscriptionView,
  type SweepRequest,
  type SweepResult,
  sweeperDisabledError,
  sweepLostKeys,
  toFederationError,
  toInvokeError,
  type UnsubscribeResult,
} from '@apigw-federation/core';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';

export interface SubscriptionsHandlerDeps {
  readonly service: Pick<SubscriptionService, 'subscribe' | 'unsubscribe' | 'get'>;
  readonly outbox: Pick<Outbox, 'append'>;
  readonly publisher: RelayPublisher;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly metrics?: Pick<Metrics, 'addMetric'>;
  /** The lost-key sweeper (`sweepLostKeys` bound to its deps); absent: a `sweep` is a CONFIG error. */
  readonly sweep?: (request: SweepRequest) => Promise<SweepResult>;
}

export type SubscriptionsResult = SubscribeResult | UnsubscribeResult | SubscriptionView | SweepResult;

/** Time kept back from the Lambda's remaining time (answering, flushing metrics). */
const RESERVE_MS = 2_000;
const METRICS = FEDERATION_METRICS.subscriptions;

/** The handler without its middy wiring: tests and the local runtime pass their own deps. */
export function createSubscriptionsHandler(deps: SubscriptionsHandlerDeps) {
  const publish = async (events: NewEvent[]) => {
    if (events.length === 0) return;
    const stored = await deps.outbox.append(events);
    try {
      await deps.publisher.publishEvents(stored);
    } catch (error) {
      // The events are in the outbox: a control plane that missed them gets them with `sync`.
      deps.logger?.warn('publishing events failed; they stay in the outbox', {
        error: toFederationError(error, 'publish').toJSON(),
      });
    }
  };

  return async (
    event: unknown,
    context?: Pick<Context, 'getRemainingTimeInMillis'>,
  ): Promise<SubscriptionsResult> => {
    try {
      if (isSweepEvent(event)) {
        const { action: _action, ...input } = parseSweepEvent(event);
        if (!deps.sweep) throw sweeperDisabledError();
        const result = await deps.sweep(input);
        deps.metrics?.addMetric(METRICS.lostKeysDeleted, MetricUnit.Count, result.deleted.length);
        deps.logger?.info('sweep answered', {
          examined: result.examined,
          deleted: result.deleted.length,
          errors: result.errors.length,
        });
        return result;
      }
      const request = parseSubscriptionsEvent(event);
      switch (request.action) {
        case 'subscribe': {
          const { action: _action, ...input } = request;
          const remaining = context?.getRemainingTimeInMillis?.();
          // A crashed (timed-out) invocation does nothing after its end: its lease can expire then.
          const options =
            remaining === undefined
              ? {}
              : { leaseMs: remaining + 1_000, waitMs: Math.max(0, Math.min(10_000, remaining - RESERVE_MS)) };
          const result = await deps.service.subscribe(input, options);
          deps.metrics?.addMetric(METRICS.created, MetricUnit.Count, 1);
          deps.logger?.info('subscribe answered', {
            subscriptionId: result.subscriptionId,
            apiKeyId: result.apiKeyId,
            usagePlanId: result.usagePlanId,
          });
          return result;
        }
        case 'unsubscribe': {
          const { action: _action, ...input } = request;
          const { result, events } = await deps.service.unsubscribe(input);
          await publish(events);
          deps.metrics?.addMetric(METRICS.revoked, MetricUnit.Count, 1);
          deps.logger?.info('unsubscribe answered', {
            subscriptionId: result.subscriptionId,
            events: events.length,
          });
          return result;
        }
        case 'get': {
          const { action: _action, ...input } = request;
          return await deps.service.get(input);
        }
      }
    } catch (error) {
      const typed = toFederationError(error, 'subscriptions');
      deps.metrics?.addMetric(METRICS.failed, MetricUnit.Count, 1);
      deps.logger?.warn('request failed', { error: typed.toJSON() });
      throw toInvokeError(typed, 'subscriptions');
    }
  };
}

const config = loadConfig();
const clients = new AwsClientFactory({
  region: config.runtime.region,
  endpoint: config.runtime.endpoint,
  assumeRoleSessionPolicy: config.runtime.assumeRoleSessionPolicy,
});
const logger = createLogger('subscriptions');
const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'subscriptions' });
const wiring = once(() => createSubscriptionsWiring({ config, clients, logger }));

const run = once(() => {
  const { sweeper, ...subscriptions } = wiring();
  return createSubscriptionsHandler({
    ...subscriptions,
    logger,
    metrics,
    sweep: (request) => sweepLostKeys(sweeper, request),
  });
});

export const handler = middy((event: unknown, context: Context) => run()(event, context))
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
