/**
 * Reference control-plane client of the relay: what an API-management control plane does to federate
 * an apigw-federation agent. Connects with `Authorization: Bearer <token>`, keeps a local catalog in
 * sync (`sync` with its last sequence on every connect, then the pushed events), reassembles parts,
 * reconnects with exponential backoff, and sends commands (`request`) that resolve with their reply.
 * It speaks the protocol through the same zod schemas the relay uses.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { decodeFrame, Reassembler } from '../layers/federation-core/src/protocol/framing.js';
import {
  type Command,
  type CommandInput,
  type EventMessage,
  EventMessageSchema,
  MAX_COMMAND_BYTES,
  type Reply,
  ReplySchema,
} from '../layers/federation-core/src/protocol/protocol.js';

export interface ReconnectOptions {
  /** First delay after a drop (default 500 ms); doubles per failed attempt up to `maxDelayMs`. */
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Give up after this many consecutive failed attempts (default: never). */
  readonly maxAttempts?: number;
}

export interface ControlPlaneClientOptions {
  /** `wss://…/{stage}` of the relay. */
  readonly url: string;
  readonly token: string;
  /** Sequence already applied (a persisted cursor); a snapshot is requested when absent. */
  readonly lastSeq?: number;
  /** Send `sync` on every (re)connect (default true). */
  readonly syncOnConnect?: boolean;
  /** Reconnect after an unexpected close (default on); `false` disables. */
  readonly reconnect?: ReconnectOptions | false;
  /** Default timeout of `request` (default 120 s; `discover` replies when the run is done). */
  readonly requestTimeoutMs?: number;
  /** Timeout of the WebSocket upgrade (default 10 s). */
  readonly connectTimeoutMs?: number;
  /**
   * Sends a `ping` command after this long without sending anything (default 5 minutes), so API
   * Gateway's 10-minute idle timeout never closes the connection; `false` disables. A ping without a
   * reply within `requestTimeoutMs` drops the connection (and reconnects).
   */
  readonly pingIntervalMs?: number | false;
}

/** Half of API Gateway's 10-minute idle timeout. */
export const DEFAULT_PING_INTERVAL_MS = 5 * 60_000;

/** An API as the client keeps it (the `api.upserted` payload). */
export interface CatalogApi {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly plans: readonly { id: string; name: string; usagePlanId: string; [key: string]: unknown }[];
  readonly definition?: { format: string; sha256: string; document?: unknown };
  readonly [key: string]: unknown;
}

/** Why `connect` or `request` failed. */
export class ClientError extends Error {
  override readonly name = 'ClientError';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

interface PendingRequest {
  readonly resolve: (reply: Reply) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface SyncState {
  readonly snapshotIds: Set<string>;
}

/**
 * Events emitted: `open`, `hello` (payload), `event` (EventMessage, after it was applied), `reply` (Reply),
 * `synced` ({ seq, snapshot }), `close` ({ code, reason }), `reconnecting` ({ attempt, delayMs }),
 * `error` (Error: protocol violations, reassembly failures, reconnect failures).
 */
export class ControlPlaneClient extends EventEmitter {
  /** The local catalog, by API id. */
  readonly catalog = new Map<string, CatalogApi>();
  /** The agent's `hello` payload. */
  agent?: unknown;
  /** Summary of the last `discovery.completed` seen. */
  lastRun?: unknown;
  private seq?: number;
  private socket?: WebSocket;
  /** The socket of a connection attempt still in its upgrade (closed by `close()`). */
  private connecting?: WebSocket;
  private readonly pending = new Map<string, PendingRequest>();
  private reassembler = new Reassembler();
  private closedByUser = false;
  private sync?: SyncState;
  private reconnectTimer?: NodeJS.Timeout;
  private pingTimer?: NodeJS.Timeout;
  private syncing?: Promise<Reply>;

  constructor(private readonly options: ControlPlaneClientOptions) {
    super();
    this.seq = options.lastSeq;
  }

  /** The last event sequence applied (the cursor of the next `sync`). */
  get lastSeq(): number | undefined {
    return this.seq;
  }

  get connected(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /**
   * Opens the connection and, unless `syncOnConnect` is false, waits for the first sync to finish.
   * Rejects (no reconnect) when the relay refuses the token or is unreachable.
   */
  async connect(): Promise<void> {
    this.closedByUser = false;
    await this.open();
    if (this.options.syncOnConnect !== false) await this.syncing;
  }

  /** Sends a command and resolves with its reply (SUCCEEDED or FAILED); rejects on timeout or disconnect. */
  request(command: CommandInput, options: { timeoutMs?: number } = {}): Promise<Reply> {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new ClientError('Not connected'));
    }
    const id = command.id ?? randomUUID();
    const full = { ...command, id } as Command;
    const text = JSON.stringify(full);
    const size = Buffer.byteLength(text, 'utf8');
    if (size > MAX_COMMAND_BYTES) {
      // API Gateway closes the connection on a client frame over 32 KB: never send one.
      return Promise.reject(
        new ClientError(
          `The ${full.action} command is ${size} bytes; a command is at most ${MAX_COMMAND_BYTES}`,
        ),
      );
    }
    this.armPing(socket);
    return new Promise<Reply>((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs ?? 120_000;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ClientError(`No reply to ${full.action} ${id} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      socket.send(text, (error) => {
        if (!error) return;
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new ClientError(`Cannot send ${full.action}: ${error.message}`));
      });
    });
  }

  /** Replays what was missed since the cursor (or takes a snapshot) and resolves with the sync reply. */
  resync(): Promise<Reply> {
    this.syncing ??= this.runSync().finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  /** Closes the connection for good (no reconnect); pending requests are rejected. */
  async close(): Promise<void> {
    this.closedByUser = true;
    clearTimeout(this.reconnectTimer);
    this.connecting?.terminate();
    clearTimeout(this.pingTimer);
    const socket = this.socket;
    if (!socket || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.close(1000, 'client closing');
      setTimeout(() => {
        socket.terminate();
        resolve();
      }, 2000).unref();
    });
  }

  private open(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const socket = new WebSocket(this.options.url, {
        headers: { Authorization: `Bearer ${this.options.token}` },
        handshakeTimeout: this.options.connectTimeoutMs ?? 10_000,
      });
      this.connecting = socket;
      let opened = false;
      socket.on('unexpected-response', (_req, res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        socket.terminate();
        if (!opened) {
          reject(
            new ClientError(
              status === 401 || status === 403
                ? `The relay refused the connection (${status}): check the token`
                : `The relay refused the connection (${status})`,
              status,
            ),
          );
        }
      });
      socket.on('error', (error) => {
        if (this.connecting === socket) this.connecting = undefined;
        if (!opened) reject(new ClientError(`Cannot connect to ${this.options.url}: ${error.message}`));
      });
      socket.on('open', () => {
        if (this.connecting === socket) this.connecting = undefined;
        if (this.closedByUser) {
          // close() was called during the upgrade: do not keep the connection.
          socket.terminate();
          reject(new ClientError('Closed while connecting'));
          return;
        }
        opened = true;
        this.socket = socket;
        this.reassembler = new Reassembler();
        this.armPing(socket);
        this.emit('open');
        if (this.options.syncOnConnect !== false) this.resync().catch((error) => this.emit('error', error));
        resolve();
      });
      socket.on('message', (data, isBinary) => {
        if (isBinary) return;
        this.onFrame(data.toString());
      });
      socket.on('close', (code, reason) => {
        if (!opened) return;
        if (this.socket === socket) {
          this.socket = undefined;
          clearTimeout(this.pingTimer);
        }
        this.sync = undefined;
        for (const [id, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(new ClientError(`Connection closed before the reply to ${id}`));
        }
        this.pending.clear();
        this.emit('close', { code, reason: reason.toString() });
        if (!this.closedByUser && this.options.reconnect !== false) this.scheduleReconnect(1);
      });
    });
  }

  /** (Re)starts the idle timer of `socket`: a `ping` goes out after `pingIntervalMs` without a send. */
  private armPing(socket: WebSocket): void {
    const interval = this.options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
    clearTimeout(this.pingTimer);
    if (interval === false) return;
    this.pingTimer = setTimeout(() => {
      if (this.socket !== socket || socket.readyState !== WebSocket.OPEN) return;
      this.request({ action: 'ping' }).catch((error: Error) => {
        // No answer: the connection is dead without a close; drop it so the reconnect logic runs.
        if (this.socket === socket && error instanceof ClientError && /No reply/.test(error.message)) {
          socket.terminate();
        }
      });
    }, interval);
    this.pingTimer.unref();
  }

  private scheduleReconnect(attempt: number): void {
    const r = this.options.reconnect || {};
    if (r.maxAttempts !== undefined && attempt > r.maxAttempts) {
      this.emit('error', new ClientError(`Gave up reconnecting after ${r.maxAttempts} attempts`));
      return;
    }
    const base = r.initialDelayMs ?? 500;
    const cap = r.maxDelayMs ?? 30_000;
    const ceiling = Math.min(cap, base * 2 ** (attempt - 1));
    // Equal jitter: at least half the backoff, so many clients do not reconnect in lockstep.
    const delayMs = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.emit('reconnecting', { attempt, delayMs });
    this.reconnectTimer = setTimeout(() => {
      if (this.closedByUser) return;
      this.open().catch((error: Error) => {
        this.emit('error', error);
        this.scheduleReconnect(attempt + 1);
      });
    }, delayMs);
  }

  private async runSync(): Promise<Reply> {
    this.sync = { snapshotIds: new Set() };
    const reply = await this.request(
      this.seq === undefined ? { action: 'sync' } : { action: 'sync', since: this.seq },
    );
    if (reply.status === 'FAILED')
      this.emit('error', new ClientError(`sync failed: ${reply.error?.message}`));
    return reply;
  }

  private onFrame(frame: string): void {
    let message: unknown;
    try {
      message = decodeFrame(frame, this.reassembler);
    } catch (error) {
      this.emit('error', error);
      return;
    }
    if (message === undefined) return;
    const type = (message as { type?: unknown }).type;
    if (type === 'reply') {
      const parsed = ReplySchema.safeParse(message);
      if (!parsed.success) {
        this.emit('error', new ClientError(`Malformed reply: ${parsed.error.issues[0]?.message}`));
        return;
      }
      const reply = parsed.data;
      this.emit('reply', reply);
      const waiting = reply.commandId === null ? undefined : this.pending.get(reply.commandId);
      if (waiting && reply.commandId !== null) {
        clearTimeout(waiting.timer);
        this.pending.delete(reply.commandId);
        waiting.resolve(reply);
      }
      return;
    }
    if (type === 'event') {
      const parsed = EventMessageSchema.safeParse(message);
      if (!parsed.success) {
        // An event this client does not know (a newer agent): pass it on, do not apply it.
        this.emit('unknown', message);
        return;
      }
      this.apply(parsed.data);
      this.emit('event', parsed.data);
      return;
    }
    this.emit('unknown', message);
  }

  /** Applies one event to the local catalog and the cursor. */
  private apply(message: EventMessage): void {
    switch (message.event) {
      case 'hello':
        this.agent = message.payload;
        this.emit('hello', message.payload);
        return;
      case 'api.upserted': {
        const api = message.payload as unknown as CatalogApi;
        this.catalog.set(api.id, api);
        this.sync?.snapshotIds.add(api.id);
        break;
      }
      case 'api.removed':
        this.catalog.delete(message.payload.id);
        break;
      case 'plan.removed': {
        const api = this.catalog.get(message.payload.apiId);
        if (api) {
          this.catalog.set(api.id, {
            ...api,
            plans: api.plans.filter((p) => p.id !== message.payload.planId),
          });
        }
        break;
      }
      case 'discovery.completed':
        this.lastRun = message.payload;
        break;
      case 'subscription.revoked':
        break;
      case 'sync.completed': {
        const { seq, snapshot } = message.payload;
        if (snapshot && this.sync) {
          for (const id of [...this.catalog.keys()])
            if (!this.sync.snapshotIds.has(id)) this.catalog.delete(id);
        }
        this.seq = snapshot ? seq : Math.max(this.seq ?? 0, seq);
        this.sync = undefined;
        this.emit('synced', { seq: this.seq, snapshot: snapshot === true });
        return;
      }
    }
    if (message.seq > 0) this.advance(message.seq);
  }

  private advance(seq: number): void {
    if (this.sync) return; // the sync's own sync.completed sets the cursor
    const last = this.seq;
    if (last !== undefined && seq > last + 1) {
      // A gap: an event was not delivered (it stays in the outbox). Catch up from the cursor.
      this.resync().catch((error) => this.emit('error', error));
      return;
    }
    this.seq = Math.max(last ?? 0, seq);
  }
}
