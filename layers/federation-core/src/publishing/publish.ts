/**
 * The append-then-publish step every capability that changes something takes: events go to the
 * outbox first (at least once), then to the connected control planes. Publishing is best effort: an
 * event that cannot be posted stays in the outbox, where the control plane's `sync` finds it.
 */
import { toFederationError } from '../errors.js';
import type { AppendOptions, NewEvent, Outbox, OutboxEvent } from '../ledger/outbox.js';
import type { Logger } from '../logger.js';
import type { RelayPublisher } from './ports.js';

/** Publishes events already in the outbox; a failure is logged, never thrown. */
export async function publishAppended(
  publisher: RelayPublisher,
  events: readonly OutboxEvent[],
  logger?: Pick<Logger, 'warn'>,
): Promise<void> {
  try {
    await publisher.publishEvents(events);
  } catch (error) {
    // The events are in the outbox: a control plane that missed them gets them with `sync`.
    logger?.warn('publishing events failed; they stay in the outbox', {
      error: toFederationError(error, 'publish').toJSON(),
    });
  }
}

/** Appends events to the outbox (with `options`, see `Outbox.append`), then publishes them (see {@link publishAppended}). */
export async function appendAndPublish(
  outbox: Pick<Outbox, 'append'>,
  publisher: RelayPublisher,
  events: readonly NewEvent[],
  logger?: Pick<Logger, 'warn'>,
  options?: AppendOptions,
): Promise<OutboxEvent[]> {
  if (events.length === 0) return [];
  const stored = await outbox.append(events, options);
  await publishAppended(publisher, stored, logger);
  return stored;
}
