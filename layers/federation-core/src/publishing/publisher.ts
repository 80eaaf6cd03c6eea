import {
  type ApiGatewayManagementApiClient,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { awsErrorName, awsHttpStatus } from '../errors.js';
import type { ConnectionRepository } from '../ledger/connections.js';
import type { OutboxEvent } from '../ledger/outbox.js';
import type { Logger } from '../logger.js';
import { type DefinitionRef, EventType, type FederatedApi } from '../model.js';
import { mapPool } from '../pool.js';
import { encodeMessage, MESSAGE_BUDGET_BYTES } from '../protocol/framing.js';
import { type EventMessage, eventMessage, type Reply, replyMessage } from '../protocol/protocol.js';
import type { CommandReply, RelayPublisher } from './ports.js';

/** Loads a stored definition's parsed document by its sha256; undefined when it is not stored. */
export type DefinitionLoader = (ref: DefinitionRef) => Promise<unknown | undefined>;

/** What happened to one post: delivered, connection gone (record deleted), or failed after the SDK's retries. */
export type PostOutcome = 'sent' | 'gone' | 'failed';

export interface PublishReport {
  readonly connections: number;
  /** Connection × event deliveries that succeeded. */
  readonly delivered: number;
  /** Connections found gone (their records were deleted). */
  readonly gone: number;
  /** Connections that failed after the SDK's retries (the events stay in the outbox for `sync`). */
  readonly failed: number;
}

export interface ConnectionPublisherOptions {
  /**
   * The `@connections` client. Transient failures are retried by the client itself (its `maxAttempts`
   * and `retryMode`, set by `AwsClientFactory.apiGatewayManagement`); the publisher adds no retry of its own.
   */
  readonly client: ApiGatewayManagementApiClient;
  readonly connections: Pick<ConnectionRepository, 'list' | 'delete'>;
  /** Loads the document of an `api.upserted` event's definition (the outbox stores only the reference). */
  readonly loadDefinition?: DefinitionLoader;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Connections posted to at once (default 10). */
  readonly concurrency?: number;
  /** Largest message posted (default `MESSAGE_BUDGET_BYTES`, a safety margin under API Gateway's 128 KB). */
  readonly maxBytes?: number;
}

export interface PostOptions {
  /**
   * Times a GoneException is retried before the connection counts as gone. A connection cannot be
   * posted to until its `$connect` integration has returned, so the `hello` retries Gone briefly.
   */
  readonly goneRetries?: number;
  readonly goneRetryDelayMs?: number;
}

/** True for the error `@connections` answers for a connection that no longer exists. */
export function isGone(error: unknown): boolean {
  return awsErrorName(error) === 'GoneException' || awsHttpStatus(error) === 410;
}

/**
 * The relay's publisher: posts framed messages through `@connections`. A `GoneException` deletes the
 * connection record; other failures are retried by the SDK client and, if they persist, logged — the
 * event stays in the outbox, where the control plane's next `sync` finds it.
 */
export class ConnectionPublisher implements RelayPublisher {
  private readonly concurrency: number;
  private readonly maxBytes: number;

  constructor(private readonly options: ConnectionPublisherOptions) {
    this.concurrency = Math.max(1, options.concurrency ?? 10);
    this.maxBytes = options.maxBytes ?? MESSAGE_BUDGET_BYTES;
  }

  /**
   * The `RelayPublisher` port. Posts the events to every recorded connection: connections concurrently (bounded), each one in
   * sequence order. A connection that fails stops receiving this batch (so it never sees a gap
   * followed by later events) and catches up with `sync`.
   */
  async publishEvents(events: readonly OutboxEvent[]): Promise<void> {
    await this.publish(events);
  }

  /** As {@link publishEvents}, reporting what happened. */
  async publish(events: readonly OutboxEvent[]): Promise<PublishReport> {
    if (events.length === 0) return { connections: 0, delivered: 0, gone: 0, failed: 0 };
    const connections = await this.options.connections.list();
    if (connections.length === 0) return { connections: 0, delivered: 0, gone: 0, failed: 0 };
    const ordered = [...events].sort((a, b) => a.seq - b.seq);
    const messages = await this.renderAll(ordered);
    const frames = messages.map((m) => encodeMessage(m, { maxBytes: this.maxBytes }));
    let delivered = 0;
    let gone = 0;
    let failed = 0;
    await mapPool(connections, this.concurrency, async ({ connectionId }) => {
      for (let i = 0; i < frames.length; i++) {
        const outcome = await this.postFrames(connectionId, frames[i] as string[]);
        if (outcome === 'sent') {
          delivered++;
          continue;
        }
        if (outcome === 'gone') gone++;
        else {
          failed++;
          this.options.logger?.warn('Event not delivered; it stays in the outbox for sync', {
            connectionId,
            seq: ordered[i]?.seq,
            remaining: frames.length - i,
          });
        }
        return;
      }
    });
    return { connections: connections.length, delivered, gone, failed };
  }

  /** Posts a reply to one connection (the `RelayPublisher` port; commands answered asynchronously). */
  async reply(connectionId: string, reply: CommandReply): Promise<void> {
    await this.postMessage(
      connectionId,
      reply.status === 'SUCCEEDED'
        ? replyMessage(reply.commandId, { status: 'SUCCEEDED', payload: reply.payload })
        : replyMessage(reply.commandId, {
            status: 'FAILED',
            error: reply.error ?? { code: 'INTERNAL', message: 'Command failed' },
          }),
    );
  }

  /** Posts one message (a reply or an event) to one connection, framed. */
  async postMessage(connectionId: string, message: Reply | EventMessage, options: PostOptions = {}) {
    return this.postFrames(connectionId, encodeMessage(message, { maxBytes: this.maxBytes }), options);
  }

  /**
   * Turns an outbox event (or a catalog entry, for snapshots) into the message sent: an `api.upserted`
   * gets its definition document loaded by sha256.
   */
  async render(event: Pick<OutboxEvent, 'event' | 'payload'> & { seq?: number }): Promise<EventMessage> {
    return (await this.renderAll([event]))[0] as EventMessage;
  }

  /**
   * Renders several events at once, each definition document loaded once per sha256 (a snapshot of
   * APIs sharing a document loads it once per batch).
   */
  renderAll(
    events: readonly (Pick<OutboxEvent, 'event' | 'payload'> & { seq?: number })[],
  ): Promise<EventMessage[]> {
    const documents = new Map<string, Promise<unknown>>();
    return Promise.all(
      events.map(async (e) => {
        const payload =
          e.event === EventType.API_UPSERTED
            ? await this.withDocument(e.payload as FederatedApi, documents)
            : e.payload;
        return eventMessage(e.event, payload, e.seq ?? 0);
      }),
    );
  }

  private async withDocument(api: FederatedApi, cache: Map<string, Promise<unknown>>): Promise<unknown> {
    const ref = api.definition;
    const loader = this.options.loadDefinition;
    if (!ref || !loader || 'document' in (ref as object)) return api;
    let pending = cache.get(ref.sha256);
    if (!pending) {
      pending = loader(ref).catch((error) => {
        this.options.logger?.error('Cannot load definition', { sha256: ref.sha256, error });
        return undefined;
      });
      cache.set(ref.sha256, pending);
    }
    const document = await pending;
    if (document === undefined) {
      this.options.logger?.warn('Definition not found; sending the API without its document', {
        apiId: api.id,
        sha256: ref.sha256,
      });
      return api;
    }
    return { ...api, definition: { format: ref.format, sha256: ref.sha256, size: ref.size, document } };
  }

  private async postFrames(
    connectionId: string,
    frames: string[],
    options: PostOptions = {},
  ): Promise<PostOutcome> {
    const goneRetries = options.goneRetries ?? 0;
    for (const frame of frames) {
      let goneSeen = 0;
      for (;;) {
        try {
          await this.options.client.send(
            new PostToConnectionCommand({ ConnectionId: connectionId, Data: frame }),
          );
          break;
        } catch (error) {
          // Gone is not transient to the SDK: it comes back at once, never retried by the client.
          if (isGone(error)) {
            if (goneSeen < goneRetries) {
              goneSeen++;
              await sleep(options.goneRetryDelayMs ?? 100);
              continue;
            }
            await this.options.connections.delete(connectionId);
            this.options.logger?.info('Connection gone; record deleted', { connectionId });
            return 'gone';
          }
          this.options.logger?.error('Post to connection failed', {
            connectionId,
            error: (error as Error).message,
          });
          return 'failed';
        }
      }
    }
    return 'sent';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
