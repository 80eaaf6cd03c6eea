import type { FunctionInvoker } from '../aws/invoke.js';
import { FederationError, toFederationError } from '../errors.js';
import type { CatalogRepository } from '../ledger/catalog.js';
import type { ConnectionRepository } from '../ledger/connections.js';
import type { Outbox } from '../ledger/outbox.js';
import type { Logger } from '../logger.js';
import { EventType } from '../model.js';
import { type FunctionPort, functionPort } from '../ports/functions.js';
import {
  type Command,
  type DiscoverCommand,
  eventMessage,
  PROVIDER,
  type ProtocolErrorCode,
  parseCommand,
  type Reply,
  replyMessage,
  type SubscribeCommand,
  type SyncCommand,
  type UnsubscribeCommand,
} from '../protocol/protocol.js';
import type { ConnectionPublisher } from '../publishing/publisher.js';

/** Catalog entries whose definitions are loaded at once while building a snapshot. */
const SNAPSHOT_RENDER_CONCURRENCY = 8;

/** What the agent says about itself in `hello` and `ping`. */
export interface AgentInfo {
  readonly agentId: string;
  readonly version: string;
  readonly sources: readonly {
    readonly name: string;
    readonly accountId?: string;
    readonly regions: readonly string[];
  }[];
}

/** The event the discovery function receives from the relay; it replies to `replyTo` when the run is done. */
export interface RelayDiscoveryRequest {
  readonly replyTo: { readonly connectionId: string; readonly commandId: string };
  readonly sources?: readonly string[];
}

export interface RelayServiceDeps {
  readonly publisher: ConnectionPublisher;
  readonly connections: ConnectionRepository;
  readonly outbox: Outbox;
  readonly catalog: CatalogRepository;
  readonly invoker: FunctionInvoker;
  readonly agent: AgentInfo;
  readonly discoveryFunctionName?: string;
  readonly subscriptionsFunctionName?: string;
  /** The last discovery run's summary (for `ping`); absent when discovery's run ledger is not wired. */
  readonly latestRun?: () => Promise<unknown | undefined>;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Outbox page size while replaying (default 500). */
  readonly replayPageSize?: number;
}

/** What `sync` did, also the reply payload. */
export interface SyncResult {
  readonly seq: number;
  readonly snapshot: boolean;
  /** Events replayed, or APIs sent in the snapshot. */
  readonly sent: number;
}

/**
 * The relay's behaviour, independent of Lambda: answering one client frame, greeting a connection,
 * replaying or snapshotting for `sync`. Every reply and event goes out through `@connections` (the
 * publisher), so framing applies to all of them.
 */
export class RelayService {
  /** The functions the relay hands commands to, reached through the invoke port. */
  private readonly discoveryFunction: FunctionPort;
  private readonly subscriptionsFunction: FunctionPort;

  constructor(private readonly deps: RelayServiceDeps) {
    this.discoveryFunction = functionPort(deps.invoker, deps.discoveryFunctionName, 'discovery');
    this.subscriptionsFunction = functionPort(deps.invoker, deps.subscriptionsFunctionName, 'subscriptions');
  }

  /**
   * Handles one frame a client sent. Invalid frames (bad JSON, unknown action, schema errors, too
   * large) get a FAILED reply and cause no other AWS call; a command's failure becomes a FAILED reply
   * with the typed error's code and message.
   */
  async handleFrame(connectionId: string, body: string | undefined | null): Promise<Reply | undefined> {
    const parsed = parseCommand(body);
    if (!parsed.ok) {
      const reply = replyMessage(parsed.commandId, {
        status: 'FAILED',
        error: { code: parsed.code, message: parsed.message },
      });
      await this.deps.publisher.postMessage(connectionId, reply);
      return reply;
    }
    const command = parsed.command;
    let reply: Reply | undefined;
    try {
      const payload = await this.execute(connectionId, command);
      // `discover` is answered by the discovery function when its run is done.
      if (command.action === 'discover') return undefined;
      reply = replyMessage(command.id, { status: 'SUCCEEDED', payload });
    } catch (error) {
      const typed = toFederationError(error, command.action);
      if (!(error instanceof FederationError)) {
        this.deps.logger?.error('Command failed', { action: command.action, connectionId, error });
      }
      reply = replyMessage(command.id, {
        status: 'FAILED',
        error: { code: typed.code as ProtocolErrorCode, message: typed.message },
      });
    }
    await this.deps.publisher.postMessage(connectionId, reply);
    return reply;
  }

  /** Sends `hello` to a new connection, retrying briefly while `$connect` has not yet returned. */
  async sendHello(connectionId: string, options: { goneRetries?: number; goneRetryDelayMs?: number } = {}) {
    const { agentId, version, sources } = this.deps.agent;
    return this.deps.publisher.postMessage(
      connectionId,
      eventMessage(EventType.HELLO, { agentId, provider: PROVIDER, version, sources }),
      { goneRetries: options.goneRetries ?? 20, goneRetryDelayMs: options.goneRetryDelayMs ?? 150 },
    );
  }

  private execute(connectionId: string, command: Command): Promise<unknown> {
    switch (command.action) {
      case 'discover':
        return this.discover(connectionId, command);
      case 'sync':
        return this.sync(connectionId, command);
      case 'subscribe':
      case 'unsubscribe':
        return this.forwardToSubscriptions(command);
      case 'ping':
        return this.ping();
    }
  }

  private async discover(connectionId: string, command: DiscoverCommand): Promise<undefined> {
    const request: RelayDiscoveryRequest = {
      replyTo: { connectionId, commandId: command.id },
      ...(command.sources ? { sources: command.sources } : {}),
    };
    await this.discoveryFunction.send(request);
    return undefined;
  }

  /**
   * Replays the outbox after `since`, or sends a snapshot (every catalog entry as `api.upserted`) when
   * `since` is absent, ahead of the outbox, or older than what the outbox still keeps. Ends with
   * `sync.completed { seq }`; the client continues from that seq.
   */
  async sync(connectionId: string, command: Pick<SyncCommand, 'since'>): Promise<SyncResult> {
    const { outbox, publisher } = this.deps;
    const since = command.since;
    const latest = await outbox.latestSeq();
    let snapshot = since === undefined || since > latest;
    if (!snapshot && since !== undefined && since < latest) {
      const oldest = await outbox.oldestSeq();
      // Everything after `since` must still be there: the first kept event is at most since + 1.
      snapshot = oldest === undefined || oldest > since + 1;
    }
    let seq = since ?? 0;
    let sent = 0;
    if (snapshot) {
      seq = latest;
      const apis = await this.deps.catalog.listAll();
      // Documents load a few at a time; posts stay in catalog order.
      for (let i = 0; i < apis.length; i += SNAPSHOT_RENDER_CONCURRENCY) {
        const batch = apis.slice(i, i + SNAPSHOT_RENDER_CONCURRENCY);
        const messages = await Promise.all(
          batch.map((api) => publisher.render({ event: EventType.API_UPSERTED, payload: api })),
        );
        for (const message of messages) {
          await this.mustPost(connectionId, message);
          sent++;
        }
      }
    } else if (since !== undefined && since < latest) {
      const pageSize = this.deps.replayPageSize ?? 500;
      let cursor = since;
      for (;;) {
        const page = await outbox.listAfter(cursor, pageSize);
        for (const event of page) {
          await this.mustPost(connectionId, await publisher.render(event));
          sent++;
          cursor = event.seq;
        }
        if (page.length < pageSize) break;
      }
      // The cursor is the last event actually replayed, not `latest`: a sequence number handed out but
      // not yet written (an append in flight) must not be skipped by the client's next sync.
      seq = cursor;
    }
    await this.mustPost(connectionId, eventMessage(EventType.SYNC_COMPLETED, { seq, snapshot }));
    return { seq, snapshot, sent };
  }

  private async forwardToSubscriptions(command: SubscribeCommand | UnsubscribeCommand): Promise<unknown> {
    const { id: _id, ...request } = command;
    return this.subscriptionsFunction.call(request);
  }

  private async ping(): Promise<unknown> {
    const [connections, lastRun] = await Promise.all([
      this.deps.connections.count(),
      this.deps.latestRun ? this.deps.latestRun() : Promise.resolve(undefined),
    ]);
    const { agentId, version, sources } = this.deps.agent;
    return { agentId, provider: PROVIDER, version, sources, lastRun: lastRun ?? null, connections };
  }

  private async mustPost(connectionId: string, message: Parameters<ConnectionPublisher['postMessage']>[1]) {
    const outcome = await this.deps.publisher.postMessage(connectionId, message);
    if (outcome !== 'sent') {
      throw new FederationError('INTERNAL', `Connection ${connectionId} is ${outcome}; sync aborted`);
    }
  }
}
