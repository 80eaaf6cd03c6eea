/**
 * discovery: one discovery run. Input: an EventBridge scheduled event, `{}`, or
 * `{ "sources": ["name"], "full": true, "replyTo": { "connectionId", "commandId" } }` (the relay's
 * `discover` command), an SQS batch of change events (`runChangeEventsFunction`: one targeted run,
 * answered with `batchItemFailures`), or, with fan-out, a batch of the fan-out queue (account-region
 * units; `runDiscoveryInvocation` dispatches, and coordinates fanned-out runs). The core's `runDiscoveryFunction` validates it, runs discovery, publishes the
 * appended events, replies to `replyTo` and returns the run summary; a failure is thrown as a function
 * error (`errorMessage` = `"<CODE>: <message>"`).
 */
import {
  type DiscoveryFunctionDeps,
  type DiscoveryInvocationResult,
  type DiscoverySummary,
  functionComposition,
  injectLambdaContext,
  METRICS_NAMESPACE,
  once,
  runDiscoveryFunction,
  runDiscoveryInvocation,
} from '@apigw-federation/core';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';

export { DISCOVERY_METRICS, type DiscoveryEvent, parseDiscoveryEvent } from '@apigw-federation/core';
export type DiscoveryHandlerDeps = DiscoveryFunctionDeps;

/** The handler without its middy wiring: tests and the local runtime pass their own deps. */
export function createDiscoveryHandler(deps: DiscoveryHandlerDeps) {
  return (event: unknown, context?: Pick<Context, 'getRemainingTimeInMillis'>): Promise<DiscoverySummary> =>
    runDiscoveryFunction(deps, event, context?.getRemainingTimeInMillis?.());
}

const { root, logger } = functionComposition('discovery');
const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'discovery' });
const deps = once(() => ({ ...root.discovery(), logger, metrics }));

export const handler = middy(
  (event: unknown, context: Context): Promise<DiscoveryInvocationResult> =>
    runDiscoveryInvocation(deps(), event, context.getRemainingTimeInMillis()),
)
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
