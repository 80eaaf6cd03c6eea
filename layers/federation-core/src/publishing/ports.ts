import type { ErrorCode } from '../errors.js';
import type { OutboxEvent } from '../ledger/outbox.js';

/** A command's outcome as the control plane receives it (`{ type: 'reply', commandId, status, ... }`). */
export interface CommandReply {
  readonly commandId: string;
  readonly status: 'SUCCEEDED' | 'FAILED';
  readonly payload?: unknown;
  readonly error?: { readonly code: ErrorCode; readonly message: string };
}

/**
 * How the core reaches connected control planes. Discovery and subscriptions publish the events they
 * appended; the relay's implementation posts through `@connections`. An event that cannot be posted
 * stays in the outbox, where `sync` finds it.
 */
export interface RelayPublisher {
  /** Posts outbox events, in sequence order, to every recorded connection. */
  publishEvents(events: readonly OutboxEvent[]): Promise<void>;
  /** Posts one reply to one connection (for commands answered asynchronously, like `discover`). */
  reply(connectionId: string, reply: CommandReply): Promise<void>;
}

/** For deployments and tests without a relay: publishing is a no-op, the outbox keeps everything. */
export const noRelay: RelayPublisher = {
  publishEvents: async () => {},
  reply: async () => {},
};
