import { z } from 'zod';
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

/**
 * A gap in the outbox followed by an event older than this is permanent: no append takes longer
 * (a Lambda runs at most 15 minutes).
 */
const HOLE_PERMANENT_AFTER_MS = 15 * 60_000;

/** Catalog entries whose definitions are loaded at once while building a snapshot. */
const SNAPSHOT_RENDER_CONCURRENCY = 25;
/** Catalog entries read per query while building a snapshot. */
const SNAPSHOT_PAGE_SIZE = 200;

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
  /** Most messages one invocation of a `sync` sends before handing on (default: as the time allows). */
  readonly syncChunkSize?: number;
  readonly now?: () => number;
}

/**
 * A `sync` in progress, handed from one relay-command invocation to the next (asynchronous invocation
 * of itself) so a 10,000-API snapshot never meets one invocation's timeout: each invocation sends what
 * its time budget allows, then passes on where it stopped.
 */
export const SyncJobSchema = z.strictObject({
  internal: z.literal('sync'),
  connectionId: z.string().min(1).max(128),
  commandId: z.string().min(1).max(128),
  snapshot: z.boolean(),
  /** The cursor the client gets in `sync.completed` (snapshot: the outbox's snapshot cursor, before any held event). */
  seq: z.number().int().min(0),
  /** Where the previous invocation stopped: the last catalog position sent (snapshot) or seq (replay). */
  after: z.union([z.string().max(512), z.number().int().min(0)]).optional(),
  /** Messages sent so far, and invocations so far (a runaway guard). */
  sent: z.number().int().min(0),
  part: z.number().int().min(1).max(10_000),
});
export type SyncJob = z.infer<typeof SyncJobSchema>;

/** True for the event relay-command sends itself to continue a `sync`. */
export function isSyncJob(event: unknown): boolean {
  return typeof event === 'object' && event !== null && (event as { internal?: unknown }).internal === 'sync';
}

/** Where and how long a `sync` may run in this invocation. */
export interface SyncBudget {
  /** The function to invoke asynchronously with the rest (relay-command itself); absent: all inline. */
  readonly self?: string;
  /** Time this invocation may spend sending; the rest goes to the next invocation. */
  readonly budgetMs?: number;
}

/** Kept back from an invocation's remaining time for handing the rest on. */
export const SYNC_HANDOFF_MARGIN_MS = 30_000;

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
  async handleFrame(
    connectionId: string,
    body: string | undefined | null,
    budget: SyncBudget = {},
  ): Promise<Reply | undefined> {
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
      if (command.action === 'sync' && budget.self) {
        // Answered (sync.completed, then the reply) by the invocation that sends the last message.
        await this.deps.invoker.invokeAsync(budget.self, await this.startSync(connectionId, command));
        return undefined;
      }
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
   * `sync.completed { seq }`; the client continues from that seq. Inline, in one go (no budget).
   */
  async sync(connectionId: string, command: Pick<SyncCommand, 'since'>): Promise<SyncResult> {
    const job = await this.startSync(connectionId, { id: 'inline', since: command.since });
    const outcome = await this.syncStep(job, {});
    if (!('done' in outcome)) throw new FederationError('INTERNAL', 'an inline sync cannot hand on');
    return outcome.done;
  }

  /** Decides between replay and snapshot and fixes the cursor: the first state of a `sync`. */
  async startSync(connectionId: string, command: Pick<SyncCommand, 'id' | 'since'>): Promise<SyncJob> {
    const { outbox } = this.deps;
    const since = command.since;
    const latest = await outbox.latestSeq();
    let snapshot = since === undefined || since > latest;
    if (!snapshot && since !== undefined && since < latest) {
      const oldest = await outbox.oldestSeq();
      // Everything after `since` must still be there: the first kept event is at most since + 1.
      snapshot = oldest === undefined || oldest > since + 1;
    }
    return {
      internal: 'sync',
      connectionId,
      commandId: command.id,
      snapshot,
      // Not `latest`: events whose catalog writes are still to come (a discovery run's hold) stay after
      // the cursor, so the client's next sync replays them. Read before the catalog.
      seq: snapshot ? await outbox.snapshotCursor() : (since ?? 0),
      ...(snapshot || since === undefined ? {} : { after: since }),
      sent: 0,
      part: 1,
    };
  }

  /**
   * Runs one invocation's share of a `sync` (the event relay-command sent itself): sends until the
   * budget or the chunk size is spent, then invokes `self` with the rest; the last share sends
   * `sync.completed` and the reply. Never throws (an asynchronous retry would send duplicates): a
   * connection that went away ends the sync.
   */
  async continueSync(event: unknown, budget: SyncBudget): Promise<void> {
    const parsed = SyncJobSchema.safeParse(event);
    if (!parsed.success) {
      this.deps.logger?.warn('Ignored an invalid sync continuation', { issues: parsed.error.issues.length });
      return;
    }
    const job = parsed.data;
    try {
      const outcome = await this.syncStep(job, budget);
      if ('next' in outcome) {
        await this.deps.invoker.invokeAsync(budget.self as string, outcome.next);
        return;
      }
      await this.deps.publisher.postMessage(
        job.connectionId,
        replyMessage(job.commandId, { status: 'SUCCEEDED', payload: outcome.done }),
      );
    } catch (error) {
      const typed = toFederationError(error, 'sync');
      this.deps.logger?.warn('sync ended early', { connectionId: job.connectionId, error: typed.toJSON() });
      await this.deps.publisher
        .postMessage(
          job.connectionId,
          replyMessage(job.commandId, {
            status: 'FAILED',
            error: { code: typed.code as ProtocolErrorCode, message: typed.message },
          }),
        )
        .catch(() => undefined);
    }
  }

  /** Sends from where `job` stopped; `next` when the budget ran out first (only with `self`). */
  private async syncStep(
    job: SyncJob,
    budget: SyncBudget,
  ): Promise<{ done: SyncResult } | { next: SyncJob }> {
    const { outbox, publisher } = this.deps;
    const now = this.deps.now ?? Date.now;
    const started = now();
    const chunk = budget.self
      ? (this.deps.syncChunkSize ?? Number.POSITIVE_INFINITY)
      : Number.POSITIVE_INFINITY;
    const budgetMs = budget.self ? (budget.budgetMs ?? Number.POSITIVE_INFINITY) : Number.POSITIVE_INFINITY;
    let sentHere = 0;
    let after = job.after;
    // At least one message per invocation, so a sync always progresses whatever the budget.
    const spent = () => sentHere >= chunk || (sentHere > 0 && now() - started >= budgetMs);
    const next = (): { next: SyncJob } => ({
      next: {
        ...job,
        ...(after === undefined ? {} : { after }),
        sent: job.sent + sentHere,
        part: job.part + 1,
      },
    });
    let seq = job.seq;
    if (job.snapshot) {
      // Page by page in catalog order, resuming after the position of the last API sent: an invocation
      // never reads more of the catalog than it sends.
      for (;;) {
        if (spent()) return next();
        const limit = Math.min(SNAPSHOT_PAGE_SIZE, chunk - sentHere);
        const page = await this.deps.catalog.listAfter(typeof after === 'string' ? after : undefined, limit);
        for (let i = 0; i < page.apis.length; ) {
          if (spent()) return next();
          const batch = page.apis.slice(i, i + SNAPSHOT_RENDER_CONCURRENCY);
          const messages = await publisher.renderAll(
            batch.map((api) => ({ event: EventType.API_UPSERTED, payload: api })),
          );
          for (const message of messages) {
            await this.mustPost(job.connectionId, message);
            after = page.positions[i];
            sentHere++;
            i++;
          }
        }
        if (page.apis.length < limit) break;
      }
    } else if (typeof after === 'number') {
      const pageSize = this.deps.replayPageSize ?? 500;
      let cursor = after;
      const permanentBefore = Date.now() - HOLE_PERMANENT_AFTER_MS;
      replay: for (;;) {
        const page = await outbox.listAfter(cursor, pageSize);
        for (const event of page) {
          // The cursor only moves through consecutive numbers. Appends are gap-free, so a gap is a read
          // racing a commit (the next sync sees it) — or, when the event after it is older than any
          // append can take, a permanent hole (an expired event, an append of an older version).
          if (event.seq !== cursor + 1 && Date.parse(event.createdAt) > permanentBefore) break replay;
          if (spent()) {
            after = cursor;
            return next();
          }
          await this.mustPost(job.connectionId, await publisher.render(event));
          sentHere++;
          cursor = event.seq;
        }
        if (page.length < pageSize) break;
      }
      after = cursor;
      seq = cursor;
    }
    await this.mustPost(
      job.connectionId,
      eventMessage(EventType.SYNC_COMPLETED, { seq, snapshot: job.snapshot }),
    );
    return { done: { seq, snapshot: job.snapshot, sent: job.sent + sentHere } };
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
