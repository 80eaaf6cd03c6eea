/**
 * discovery: one discovery run. Input: an EventBridge scheduled event, `{}`, or
 * `{ "sources": ["name"], "full": true, "replyTo": { "connectionId", "commandId" } }` (the relay's
 * `discover` command). Validates the event, runs the core, publishes the appended outbox events to the
 * connected control planes, replies to `replyTo`, and returns the run summary. A failure is thrown as a
 * function error (`errorMessage` = `"<CODE>: <message>"`).
 */
import {
  AwsClientFactory,
  createDiscoveryWiring,
  createLogger,
  type DiscoveryEngine,
  type DiscoverySummary,
  FEDERATION_METRICS,
  formatIssues,
  injectLambdaContext,
  type Logger,
  loadConfig,
  METRICS_NAMESPACE,
  once,
  type RelayPublisher,
  toFederationError,
  toInvokeError,
  ValidationError,
} from '@apigw-federation/core';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { z } from 'zod';

/** EMF metric names of discovery (the contract with the dashboard lives in the core). */
export const DISCOVERY_METRICS = FEDERATION_METRICS.discovery;

const SOURCE_NAME = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected a configured source name');

const RequestSchema = z.strictObject({
  sources: z.array(SOURCE_NAME).min(1).max(100).optional(),
  full: z.boolean().optional(),
  replyTo: z
    .strictObject({
      connectionId: z.string().min(1).max(128),
      commandId: z.string().min(1).max(128),
    })
    .optional(),
});

/** EventBridge's scheduled event: its content does not matter, only that it is one. */
const ScheduledEventSchema = z.looseObject({
  source: z.literal('aws.events'),
  'detail-type': z.literal('Scheduled Event'),
});

export type DiscoveryEvent = z.output<typeof RequestSchema>;

/** Validates the function's input; a scheduled event means "everything, incrementally". */
export function parseDiscoveryEvent(event: unknown): DiscoveryEvent {
  if (ScheduledEventSchema.safeParse(event).success) return {};
  const parsed = RequestSchema.safeParse(event ?? {});
  if (!parsed.success) {
    throw new ValidationError(`Invalid discovery request: ${formatIssues(parsed.error, 'event')}`);
  }
  return parsed.data;
}

export interface DiscoveryHandlerDeps {
  readonly engine: Pick<DiscoveryEngine, 'run'>;
  readonly publisher: RelayPublisher;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly metrics?: Pick<Metrics, 'addMetric'>;
}

/** Kept back from the Lambda's remaining time when sizing the lease. */
const LEASE_MARGIN_MS = 30_000;

/** The handler without its middy wiring: tests and the local runtime pass their own deps. */
export function createDiscoveryHandler(deps: DiscoveryHandlerDeps) {
  const metric = (name: string, value: number) => deps.metrics?.addMetric(name, MetricUnit.Count, value);

  return async (
    event: unknown,
    context?: Pick<Context, 'getRemainingTimeInMillis'>,
  ): Promise<DiscoverySummary> => {
    let request: DiscoveryEvent;
    try {
      request = parseDiscoveryEvent(event);
    } catch (error) {
      deps.logger?.warn('invalid discovery request', {
        error: toFederationError(error, 'discovery').toJSON(),
      });
      throw toInvokeError(error, 'discovery');
    }
    const replyTo = request.replyTo;
    const remaining = context?.getRemainingTimeInMillis?.();
    try {
      const { summary, events } = await deps.engine.run({
        sources: request.sources,
        full: request.full,
        // A run cut off by the Lambda timeout does nothing afterwards: its lease may end with it.
        ...(remaining !== undefined ? { leaseTtlMs: remaining + LEASE_MARGIN_MS } : {}),
      });
      metric(DISCOVERY_METRICS.runs, 1);
      metric(DISCOVERY_METRICS.partialRuns, summary.partial ? 1 : 0);
      metric(DISCOVERY_METRICS.failedRuns, 0);
      metric(
        DISCOVERY_METRICS.apiCalls,
        Object.values(summary.apiCalls).reduce((a, b) => a + b, 0),
      );
      metric(DISCOVERY_METRICS.throttles, summary.throttles);
      metric(DISCOVERY_METRICS.apisUpserted, summary.counts.upserted);
      metric(DISCOVERY_METRICS.apisRemoved, summary.counts.removed);
      try {
        await deps.publisher.publishEvents(events);
      } catch (error) {
        // The events are in the outbox: a control plane that missed them gets them with `sync`.
        deps.logger?.warn('publishing events failed; they stay in the outbox', {
          error: toFederationError(error, 'publish').toJSON(),
        });
      }
      if (replyTo) {
        await safeReply(deps, replyTo.connectionId, {
          commandId: replyTo.commandId,
          status: 'SUCCEEDED',
          payload: summary,
        });
      }
      return summary;
    } catch (error) {
      const typed = toFederationError(error, 'discovery');
      metric(DISCOVERY_METRICS.runs, 1);
      metric(DISCOVERY_METRICS.failedRuns, 1);
      deps.logger?.error('discovery run failed', { error: typed.toJSON() });
      if (replyTo) {
        await safeReply(deps, replyTo.connectionId, {
          commandId: replyTo.commandId,
          status: 'FAILED',
          error: { code: typed.code, message: typed.message },
        });
      }
      throw toInvokeError(typed, 'discovery');
    }
  };
}

async function safeReply(
  deps: DiscoveryHandlerDeps,
  connectionId: string,
  reply: Parameters<RelayPublisher['reply']>[1],
): Promise<void> {
  try {
    await deps.publisher.reply(connectionId, reply);
  } catch (error) {
    deps.logger?.warn('reply failed', { connectionId, error: toFederationError(error, 'reply').toJSON() });
  }
}

const config = loadConfig();
const clients = new AwsClientFactory({
  region: config.runtime.region,
  endpoint: config.runtime.endpoint,
  assumeRoleSessionPolicy: config.runtime.assumeRoleSessionPolicy,
});
const logger = createLogger('discovery');
const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'discovery' });
const wiring = once(() => createDiscoveryWiring({ config, clients, logger }));
const run = once(() => createDiscoveryHandler({ ...wiring(), logger, metrics }));

export const handler = middy((event: unknown, context: Context) => run()(event, context))
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
