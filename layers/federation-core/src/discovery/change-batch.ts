import { BusyError, toFederationError } from '../errors.js';
import type { OutboxEvent } from '../ledger/outbox.js';
import type { Logger } from '../logger.js';
import { type ApiGatewayChange, coalesceChanges, parseChangeEvent } from './change-events.js';
import type { DiscoveryEngine } from './engine.js';
import { AccountRegionStatus, type DiscoverySummary } from './summary.js';

/** One queued change event: the SQS message id and the EventBridge event it carries. */
export interface QueuedChange {
  readonly messageId: string;
  readonly body: string;
}

export interface ChangeBatchDeps {
  readonly engine: Pick<DiscoveryEngine, 'run'>;
  /** The relay publisher (publishing port). */
  readonly publisher: { publishEvents(events: OutboxEvent[]): Promise<unknown> };
  readonly logger?: Pick<Logger, 'info' | 'warn'>;
}

export interface ChangeBatchResult {
  /** Messages to deliver again (SQS partial batch response): their account-region was not done. */
  readonly batchItemFailures: Array<{ itemIdentifier: string }>;
  /** The targeted run's summary; absent when no message named a change. */
  readonly summary?: DiscoverySummary;
  /** Messages that named no change this agent federates (not an API Gateway write of the list). */
  readonly ignored: number;
}

/** SQS's event: `{ Records: [{ messageId, body, eventSource: 'aws:sqs', ... }] }`. */
export function isQueuedChangeBatch(event: unknown): event is { Records: QueuedChange[] } {
  const records = (event as { Records?: unknown } | null)?.Records;
  return (
    Array.isArray(records) &&
    records.length > 0 &&
    records.every((r) => (r as { eventSource?: unknown })?.eventSource === 'aws:sqs')
  );
}

/**
 * One batch of queued change events (the queue's batching window gathered them): one targeted run
 * for all of them, each account-region once, under the account-region's discovery lease. A message
 * whose account-region was not completed (lease busy, throttled after retries, an AWS error) is
 * reported back, so SQS delivers it again and, after the queue's `maxReceiveCount`, moves it to the
 * dead-letter queue; everything else is done. The run's events are published like a full run's.
 */
export async function processChangeBatch(
  deps: ChangeBatchDeps,
  messages: readonly QueuedChange[],
  options: { readonly leaseTtlMs?: number } = {},
): Promise<ChangeBatchResult> {
  const changes: Array<{ messageId: string; change: ApiGatewayChange }> = [];
  let ignored = 0;
  for (const message of messages) {
    let change: ApiGatewayChange | undefined;
    try {
      change = parseChangeEvent(JSON.parse(message.body));
    } catch {
      change = undefined;
    }
    if (change) changes.push({ messageId: message.messageId, change });
    else ignored++;
  }
  if (changes.length === 0) return { batchItemFailures: [], ignored };
  const targets = coalesceChanges(changes.map((c) => c.change));
  const retryAll = () => ({
    batchItemFailures: changes.map((c) => ({ itemIdentifier: c.messageId })),
    ignored,
  });
  let result: Awaited<ReturnType<DiscoveryEngine['run']>>;
  try {
    result = await deps.engine.run({ targets, ...options });
  } catch (error) {
    const typed = toFederationError(error, 'targeted discovery');
    deps.logger?.warn(
      error instanceof BusyError
        ? 'targeted discovery: account-region busy (a full run holds its lease); events re-queued'
        : 'targeted discovery failed; events re-queued',
      { error: typed.toJSON(), targets },
    );
    return retryAll();
  }
  const notDone = new Set(
    result.accountRegions
      .filter((unit) => unit.status !== AccountRegionStatus.COMPLETE)
      .map((unit) => `${unit.accountId}/${unit.region}`),
  );
  try {
    await deps.publisher.publishEvents(result.events);
  } catch (error) {
    // The events are in the outbox: a control plane that missed them gets them with `sync`.
    deps.logger?.warn('publishing events failed; they stay in the outbox', {
      error: toFederationError(error, 'publish').toJSON(),
    });
  }
  deps.logger?.info('targeted discovery', {
    messages: messages.length,
    ignored,
    targets,
    counts: result.summary.counts,
    apiCalls: result.summary.apiCalls,
    retried: notDone.size,
  });
  return {
    batchItemFailures: changes
      .filter((c) => notDone.has(`${c.change.accountId}/${c.change.region}`))
      .map((c) => ({ itemIdentifier: c.messageId })),
    summary: result.summary,
    ignored,
  };
}
