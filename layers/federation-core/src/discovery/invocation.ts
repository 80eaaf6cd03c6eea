/**
 * The discovery function's entry: which kind of event it got and who handles it.
 *
 * - an SQS batch of the fan-out queue → `processFanOutBatch` (units, continuations, deadlines);
 * - an SQS batch of change events → `runChangeEventsFunction` (one targeted run, in this invocation);
 * - anything else (the schedule, `{}`, `{ "full": true }`, the relay's `discover`) → the coordinator of
 *   a fanned-out run when fan-out is wired (`fanOut`), else one run in this invocation
 *   (`runDiscoveryFunction`).
 */
import { toFederationError, toInvokeError, ValidationError } from '../errors.js';
import { countError, isFaultCode } from '../metrics.js';
import {
  type FanOutDeps,
  type FanOutRunStarted,
  type FanOutSummary,
  isFanOutBatch,
  processFanOutBatch,
  runFanOut,
} from './fan-out.js';
import {
  DISCOVERY_METRICS,
  type DiscoveryFunctionDeps,
  parseDiscoveryEvent,
  runChangeEventsFunction,
  runDiscoveryFunction,
} from './function.js';
import type { DiscoverySummary } from './summary.js';

export interface DiscoveryInvocationDeps extends DiscoveryFunctionDeps {
  /** Fan-out (the queue is configured): runs are coordinated, units consumed from the queue. */
  readonly fanOut?: FanOutDeps;
}

export type DiscoveryInvocationResult =
  | DiscoverySummary
  | FanOutSummary
  | FanOutRunStarted
  | { batchItemFailures: Array<{ itemIdentifier: string }> };

/** Kept back from the remaining time while a coordinator waits for its run. */
const WAIT_MARGIN_MS = 30_000;

function isScheduledEvent(event: unknown): boolean {
  const e = event as { source?: unknown; 'detail-type'?: unknown } | null;
  return e?.source === 'aws.events' && e['detail-type'] === 'Scheduled Event';
}

export async function runDiscoveryInvocation(
  deps: DiscoveryInvocationDeps,
  event: unknown,
  remainingMs?: number,
): Promise<DiscoveryInvocationResult> {
  if (isFanOutBatch(event)) {
    if (!deps.fanOut) {
      throw toInvokeError(new ValidationError('a fan-out batch, but fan-out is not configured'), 'discovery');
    }
    return processFanOutBatch(deps.fanOut, event.Records, remainingMs);
  }
  if ((event as { Records?: unknown } | null)?.Records !== undefined) {
    return runChangeEventsFunction(deps, event, remainingMs);
  }
  if (!deps.fanOut) return runDiscoveryFunction(deps, event, remainingMs);
  return coordinate(deps, deps.fanOut, event, remainingMs);
}

/** A run's coordinator: starts the fanned-out run, waits for it when asked directly. */
async function coordinate(
  deps: DiscoveryInvocationDeps,
  fanOut: FanOutDeps,
  event: unknown,
  remainingMs: number | undefined,
): Promise<FanOutSummary | FanOutRunStarted> {
  let request: ReturnType<typeof parseDiscoveryEvent>;
  try {
    request = parseDiscoveryEvent(event);
  } catch (error) {
    countError(deps.metrics, toFederationError(error, 'discovery').code);
    throw toInvokeError(error, 'discovery');
  }
  // The schedule and the relay wait for nobody: the relay's reply comes when the run completes.
  const wait =
    isScheduledEvent(event) || request.replyTo
      ? 0
      : Math.max(
          0,
          Math.min(fanOut.settings.waitMs, (remainingMs ?? Number.POSITIVE_INFINITY) - WAIT_MARGIN_MS),
        );
  try {
    const result = await runFanOut(
      fanOut,
      {
        sources: request.sources,
        full: request.full,
        ...(request.replyTo ? { replyTo: request.replyTo } : {}),
      },
      wait,
    );
    deps.metrics?.addMetric(DISCOVERY_METRICS.runs, 'Count', 1);
    deps.metrics?.addMetric(DISCOVERY_METRICS.failedRuns, 'Count', 0);
    return result;
  } catch (error) {
    const typed = toFederationError(error, 'discovery');
    deps.metrics?.addMetric(DISCOVERY_METRICS.runs, 'Count', 1);
    deps.metrics?.addMetric(DISCOVERY_METRICS.failedRuns, 'Count', isFaultCode(typed.code) ? 1 : 0);
    countError(deps.metrics, typed.code);
    deps.logger?.error('discovery run could not be started', { error: typed.toJSON() });
    if (request.replyTo) {
      await deps.publisher
        .reply(request.replyTo.connectionId, {
          commandId: request.replyTo.commandId,
          status: 'FAILED',
          error: { code: typed.code, message: typed.message },
        })
        .catch(() => undefined);
    }
    throw toInvokeError(typed, 'discovery');
  }
}
