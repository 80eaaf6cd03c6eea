/**
 * The discovery function's behaviour, independent of Lambda: validate the event, run the engine,
 * count the run, publish the appended events to connected control planes and answer a relay
 * `discover` (`replyTo`). The handler only adapts Lambda to this.
 */
import { z } from 'zod';
import { formatIssues } from '../config/load.js';
import { toFederationError, toInvokeError, ValidationError } from '../errors.js';
import type { Logger } from '../logger.js';
import { countError, FEDERATION_METRICS, isFaultCode, type MetricsSink } from '../metrics.js';
import { type DiscoveryRequest, DiscoveryRequestSchema } from '../protocol/requests.js';
import type { CommandReply, RelayPublisher } from '../publishing/ports.js';
import { publishAppended } from '../publishing/publish.js';
import { isQueuedChangeBatch, processChangeBatch } from './change-batch.js';
import type { DiscoveryEngine } from './engine.js';
import type { DiscoverySummary } from './summary.js';

/** EMF metric names of discovery (the contract with the dashboard is FEDERATION_METRICS). */
export const DISCOVERY_METRICS = FEDERATION_METRICS.discovery;

/** EventBridge's scheduled event: its content does not matter, only that it is one. */
const ScheduledEventSchema = z.looseObject({
  source: z.literal('aws.events'),
  'detail-type': z.literal('Scheduled Event'),
});

export type DiscoveryEvent = DiscoveryRequest;

/** Validates the function's input; a scheduled event means "everything, incrementally". */
export function parseDiscoveryEvent(event: unknown): DiscoveryEvent {
  if (ScheduledEventSchema.safeParse(event).success) return {};
  const parsed = DiscoveryRequestSchema.safeParse(event ?? {});
  if (!parsed.success) {
    throw new ValidationError(`Invalid discovery request: ${formatIssues(parsed.error, 'event')}`);
  }
  return parsed.data;
}

export interface DiscoveryFunctionDeps {
  readonly engine: Pick<DiscoveryEngine, 'run'>;
  readonly publisher: RelayPublisher;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly metrics?: MetricsSink;
}

/**
 * Kept back from the Lambda's remaining time when sizing the lease: a run cut off by the Lambda
 * timeout does nothing afterwards, so its lease may end shortly after it.
 */
const LEASE_MARGIN_MS = 30_000;

/**
 * One invocation of the discovery function. Throws the function error Lambda reports
 * (`"<CODE>: <message>"`); a `replyTo` gets the summary or the error either way.
 */
export async function runDiscoveryFunction(
  deps: DiscoveryFunctionDeps,
  event: unknown,
  remainingMs?: number,
): Promise<DiscoverySummary> {
  const metric = (name: string, value: number) => deps.metrics?.addMetric(name, 'Count', value);
  let request: DiscoveryEvent;
  try {
    request = parseDiscoveryEvent(event);
  } catch (error) {
    countError(deps.metrics, toFederationError(error, 'discovery').code);
    deps.logger?.warn('invalid discovery request', { error: toFederationError(error, 'discovery').toJSON() });
    throw toInvokeError(error, 'discovery');
  }
  const { replyTo } = request;
  try {
    const { summary, events } = await deps.engine.run({
      sources: request.sources,
      full: request.full,
      ...(remainingMs !== undefined ? { leaseTtlMs: remainingMs + LEASE_MARGIN_MS } : {}),
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
    await publishAppended(deps.publisher, events, deps.logger);
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
    // A run the caller asked wrongly (unknown source) or that another run holds (BUSY) did not fail.
    metric(DISCOVERY_METRICS.failedRuns, isFaultCode(typed.code) ? 1 : 0);
    countError(deps.metrics, typed.code);
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
}

/**
 * One SQS batch of change events (`changeEvents`): one targeted run, answered with SQS's partial batch
 * response (the messages to deliver again).
 */
export async function runChangeEventsFunction(
  deps: DiscoveryFunctionDeps,
  event: unknown,
  remainingMs?: number,
): Promise<{ batchItemFailures: Array<{ itemIdentifier: string }> }> {
  if (!isQueuedChangeBatch(event)) {
    throw toInvokeError(new ValidationError('expected an SQS batch of change events'), 'discovery');
  }
  const { batchItemFailures } = await processChangeBatch(
    deps,
    event.Records,
    remainingMs !== undefined ? { leaseTtlMs: remainingMs + LEASE_MARGIN_MS } : {},
  );
  return { batchItemFailures };
}

/** Answers the relay's `discover`; a reply that cannot be posted is logged (the summary is in RUN#). */
async function safeReply(deps: DiscoveryFunctionDeps, connectionId: string, reply: CommandReply) {
  try {
    await deps.publisher.reply(connectionId, reply);
  } catch (error) {
    deps.logger?.warn('reply failed', { connectionId, error: toFederationError(error, 'reply').toJSON() });
  }
}
