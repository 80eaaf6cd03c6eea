/**
 * The subscriptions function's behaviour, independent of Lambda: one event
 * (`{ action: 'subscribe' | 'unsubscribe' | 'get' | 'sweep' | 'revoke-keys' | 'finish-revocations', ... }`) → one answer, revocations
 * appended to the outbox and published, metrics and a log line per answer. A failure is thrown as
 * the function error Lambda reports (`"<CODE>: <message>"`, see `toInvokeError`).
 */
import { toFederationError, toInvokeError } from '../errors.js';
import type { Outbox } from '../ledger/outbox.js';
import type { Logger } from '../logger.js';
import { countError, FEDERATION_METRICS, type MetricsSink } from '../metrics.js';
import type { RelayPublisher } from '../publishing/ports.js';
import { appendAndPublish } from '../publishing/publish.js';
import { parseSubscriptionsEvent, type SweepRequest } from './schema.js';
import type {
  FinishRevocationsResult,
  RevokeKeysResult,
  SubscribeResult,
  SubscriptionService,
  UnsubscribeResult,
} from './service.js';
import { type SweepResult, sweeperDisabledError } from './sweeper.js';
import type { EmitEvents, SubscriptionView } from './views.js';

export interface SubscriptionsFunctionDeps {
  readonly service: Pick<
    SubscriptionService,
    'subscribe' | 'unsubscribe' | 'get' | 'revokeKeys' | 'finishRevocations'
  >;
  readonly outbox: Pick<Outbox, 'append'>;
  readonly publisher: RelayPublisher;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly metrics?: MetricsSink;
  /** The lost-key sweeper (`sweepLostKeys` bound to its deps); absent: a `sweep` is a CONFIG error. */
  readonly sweep?: (request: SweepRequest) => Promise<SweepResult>;
}

export type SubscriptionsResult =
  | SubscribeResult
  | UnsubscribeResult
  | SubscriptionView
  | SweepResult
  | RevokeKeysResult
  | FinishRevocationsResult;

/** Time kept back from the Lambda's remaining time (answering, flushing metrics). */
const RESERVE_MS = 2_000;
const METRICS = FEDERATION_METRICS.subscriptions;

/** One invocation of the subscriptions function; `remainingMs` is the Lambda's remaining time. */
export async function runSubscriptionsFunction(
  deps: SubscriptionsFunctionDeps,
  event: unknown,
  remainingMs?: number,
): Promise<SubscriptionsResult> {
  const metric = (name: string, value: number) => deps.metrics?.addMetric(name, 'Count', value);
  const emit: EmitEvents = (events, options) =>
    appendAndPublish(deps.outbox, deps.publisher, events, deps.logger, options);
  try {
    const request = parseSubscriptionsEvent(event);
    switch (request.action) {
      case 'subscribe': {
        const { action: _action, ...input } = request;
        // A crashed (timed-out) invocation does nothing after its end: its lease can expire then.
        const options =
          remainingMs === undefined
            ? {}
            : {
                leaseMs: remainingMs + 1_000,
                waitMs: Math.max(0, Math.min(10_000, remainingMs - RESERVE_MS)),
              };
        const result = await deps.service.subscribe(input, options);
        metric(METRICS.created, 1);
        deps.logger?.info('subscribe answered', {
          subscriptionId: result.subscriptionId,
          apiKeyId: result.apiKeyId,
          usagePlanId: result.usagePlanId,
        });
        return result;
      }
      case 'unsubscribe': {
        const { action: _action, ...input } = request;
        const { result, events } = await deps.service.unsubscribe(input, emit);
        metric(METRICS.revoked, 1);
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
      case 'revoke-keys': {
        const { action: _action, ...input } = request;
        // Each event reaches the outbox in one transaction with the ledger's "key deleted" mark.
        const result = await deps.service.revokeKeys(input, emit);
        metric(METRICS.revokedKeysDeleted, result.deleted.length);
        deps.logger?.info('revoke-keys answered', {
          deleted: result.deleted.length,
          alreadyDeleted: result.alreadyDeleted.length,
          skipped: result.skipped.length,
        });
        return result;
      }
      case 'finish-revocations': {
        const { action: _action, ...input } = request;
        const result = await deps.service.finishRevocations(
          input,
          emit,
          remainingMs === undefined ? {} : { withinMs: Math.max(0, remainingMs - RESERVE_MS * 2) },
        );
        metric(METRICS.revokedKeysDeleted, result.deleted.length);
        deps.logger?.info('finish-revocations answered', {
          deleted: result.deleted.length,
          alreadyDeleted: result.alreadyDeleted.length,
          skipped: result.skipped.length,
          failed: result.failed.length,
          more: result.more,
        });
        return result;
      }
      case 'sweep': {
        const { action: _action, ...input } = request;
        if (!deps.sweep) throw sweeperDisabledError();
        const result = await deps.sweep(input);
        metric(METRICS.lostKeysDeleted, result.deleted.length);
        deps.logger?.info('sweep answered', {
          examined: result.examined,
          deleted: result.deleted.length,
          errors: result.errors.length,
        });
        return result;
      }
    }
  } catch (error) {
    const typed = toFederationError(error, 'subscriptions');
    metric(METRICS.failed, 1);
    countError(deps.metrics, typed.code);
    deps.logger?.warn('request failed', { error: typed.toJSON() });
    throw toInvokeError(typed, 'subscriptions');
  }
}
