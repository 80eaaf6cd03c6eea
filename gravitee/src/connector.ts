/**
 * The bridge's side of Gravitee's exchange: what `WebSocketExchangeConnector` and
 * `WebSocketConnectorChannel` do in Gravitee's own agent.
 *
 * - Connects to `<endpoint>/exchange/controller` with `X-Gravitee-Exchange-Protocol: v1` and the
 *   configured headers; endpoints are tried in turn (one per attempt), the first again after a success.
 * - Sends HELLO `{targetId, provider}` first and waits for its reply (60 s). SUCCEEDED: the channel is
 *   active and pings every 5 s. ERROR: fatal (Gravitee does not retry it either). No reply: retried.
 * - Retries with exponential backoff (1 s, ×1.5, at most 5 min: Gravitee's `retryExponentialBackoff(1,
 *   300, SECONDS, 1.5)`); a refused upgrade (401/403) is reported as a token problem and retried too.
 * - Reconnects after any close (Gravitee's connector with `autoReconnect`), except after a GOOD_BYE
 *   without `reconnect`.
 * - GOOD_BYE `{reconnect}`: closes with 1013 (reconnect) or 1000 (stay disconnected), as
 *   `AbstractWebSocketChannel.handleGoodByeCommand`.
 * - Text frames: closed with 1003. Every message sent is binary, fragmented beyond `fragmentBytes`.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { type BridgeConfig, controllerUrl, describeEndpoint } from './config.js';
import {
  CONTROLLER_PATH,
  CommandStatus,
  decodeExchange,
  type ExchangeCommand,
  ExchangeDecodeError,
  type ExchangeReply,
  ExchangeType,
  encodeCommand,
  encodeReply,
  failed,
  fragment,
  PING_INTERVAL_MS,
  PROTOCOL_HEADER,
  PROTOCOL_VERSION,
  REPLY_TIMEOUT_MS,
  succeeded,
} from './exchange.js';
import type { Log } from './log.js';

export interface BackoffOptions {
  readonly initialMs: number;
  readonly factor: number;
  readonly maxMs: number;
}

/** Gravitee's connector: 1 s, growing by 1.5, capped at 300 s. */
export const GRAVITEE_BACKOFF: BackoffOptions = { initialMs: 1_000, factor: 1.5, maxMs: 300_000 };

/** The delay before retry number `attempt` (1-based). */
export function backoffDelay(attempt: number, options: BackoffOptions = GRAVITEE_BACKOFF): number {
  return Math.min(options.maxMs, Math.round(options.initialMs * options.factor ** Math.max(0, attempt - 1)));
}

/** What a handler answers: the reply, and work to start once the reply is on the wire (INGEST pushes). */
export interface HandlerResult {
  readonly reply: ExchangeReply;
  readonly afterReply?: () => void;
}

/** Handles one controller → agent command; resolves with the reply to send. */
export type CommandHandler = (command: ExchangeCommand) => Promise<HandlerResult>;

export interface ConnectorOptions {
  readonly config: Pick<
    BridgeConfig,
    'endpoints' | 'headers' | 'integrationId' | 'provider' | 'tls' | 'fragmentBytes' | 'maxMessageBytes'
  >;
  readonly log: Log;
  /** DISCOVER, START_INGEST, SUBSCRIBE, ... (HELLO, PRIMARY, HEALTH_CHECK and GOOD_BYE are handled here
   * except HEALTH_CHECK's answer, from `health`). */
  readonly handle: CommandHandler;
  readonly health: () => { healthy: boolean; detail: string };
  /** HELLO answered with ERROR: the bridge cannot serve this integration. */
  readonly onFatal: (reason: string) => void;
  readonly backoff?: BackoffOptions;
  readonly pingIntervalMs?: number;
  readonly replyTimeoutMs?: number;
  readonly handshakeTimeoutMs?: number;
}

interface Pending {
  readonly resolve: (reply: ExchangeReply) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export type ConnectorState = 'connecting' | 'connected' | 'waiting' | 'idle' | 'stopped';

export class GraviteeConnector {
  private socket?: WebSocket;
  private active = false;
  private stopped = false;
  private primary = false;
  private attempt = 0;
  private endpointIndex = 0;
  private retryTimer?: NodeJS.Timeout;
  private pingTimer?: NodeJS.Timeout;
  private readonly pending = new Map<string, Pending>();
  /** Set by GOOD_BYE: whether to reconnect after the close that follows. */
  private goodByeReconnect?: boolean;
  private stateValue: ConnectorState = 'idle';
  private readonly backoff: BackoffOptions;

  constructor(private readonly options: ConnectorOptions) {
    this.backoff = options.backoff ?? GRAVITEE_BACKOFF;
  }

  /** True once HELLO succeeded and until the socket closes. */
  get isActive(): boolean {
    return this.active;
  }

  get isPrimary(): boolean {
    return this.primary;
  }

  get state(): ConnectorState {
    return this.stateValue;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** Closes the channel for good (1000) and stops retrying. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stateValue = 'stopped';
    clearTimeout(this.retryTimer);
    this.stopPing();
    const socket = this.socket;
    if (!socket || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
      else socket.close(1000, 'bridge stopping');
      setTimeout(() => {
        socket.terminate();
        resolve();
      }, 2_000).unref();
    });
  }

  /** Sends an agent → controller command (INGEST) and resolves with the controller's reply. */
  send(type: string, payload: Record<string, unknown>): Promise<ExchangeReply> {
    const socket = this.socket;
    if (!socket || !this.active) return Promise.reject(new Error(`cannot send ${type}: not connected`));
    return this.request(socket, { id: randomUUID(), type, payload });
  }

  private request(socket: WebSocket, command: ExchangeCommand): Promise<ExchangeReply> {
    const timeoutMs = this.options.replyTimeoutMs ?? REPLY_TIMEOUT_MS;
    return new Promise<ExchangeReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(command.id);
        reject(new Error(`no reply to ${command.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(command.id, { resolve, reject, timer });
      try {
        this.write(socket, encodeCommand(command));
      } catch (error) {
        clearTimeout(timer);
        this.pending.delete(command.id);
        reject(error as Error);
      }
    });
  }

  /**
   * Writes one message: a single binary frame, or (larger than `fragmentBytes`) a binary frame with FIN
   * clear and continuation frames, all queued in one synchronous loop so no other message interleaves.
   */
  private write(socket: WebSocket, message: Buffer): void {
    const limit = this.options.config.maxMessageBytes;
    if (message.length > limit) {
      throw new Error(`message of ${message.length} bytes exceeds the controller's limit of ${limit} bytes`);
    }
    const frames = fragment(message, this.options.config.fragmentBytes);
    for (let i = 0; i < frames.length; i++) {
      socket.send(frames[i]!, { binary: true, fin: i === frames.length - 1, compress: false });
    }
  }

  private reply(socket: WebSocket, reply: ExchangeReply): void {
    if (socket.readyState !== WebSocket.OPEN) return;
    try {
      this.write(socket, encodeReply(reply));
    } catch (error) {
      this.options.log.error(`cannot send the ${reply.type} reply: ${(error as Error).message}`);
      if (reply.commandStatus === CommandStatus.SUCCEEDED) {
        this.write(
          socket,
          encodeReply(failed({ id: reply.commandId, type: reply.type }, (error as Error).message)),
        );
      }
    }
  }

  private connect(): void {
    if (this.stopped) return;
    const { config, log } = this.options;
    const endpoint = config.endpoints[this.endpointIndex % config.endpoints.length]!;
    this.endpointIndex++;
    const url = controllerUrl(endpoint, CONTROLLER_PATH);
    this.stateValue = 'connecting';
    log.info(`connecting to Gravitee at ${describeEndpoint(endpoint)}${CONTROLLER_PATH}`);
    const socket = new WebSocket(url, {
      headers: { [PROTOCOL_HEADER]: PROTOCOL_VERSION, ...config.headers },
      handshakeTimeout: this.options.handshakeTimeoutMs ?? 10_000,
      perMessageDeflate: false,
      maxPayload: config.maxMessageBytes,
      rejectUnauthorized: !config.tls.trustAll,
      ...(config.tls.ca ? { ca: config.tls.ca } : {}),
      ...(config.tls.verifyHost ? {} : { checkServerIdentity: () => undefined }),
    });
    this.socket = socket;
    let opened = false;
    let failure: string | undefined;

    socket.on('unexpected-response', (_request, response) => {
      const status = response.statusCode ?? 0;
      response.resume();
      failure =
        status === 401 || status === 403
          ? `Gravitee refused the connection (${status}): check the token in the Authorization header (a service account token of the integration's environment)`
          : `Gravitee refused the connection (HTTP ${status})`;
      socket.terminate();
    });
    socket.on('error', (error) => {
      if (opened) log.warn(`the Gravitee connection failed: ${error.message}`);
      else failure ??= `cannot connect to Gravitee: ${error.message}`;
    });
    socket.on('open', () => {
      opened = true;
      this.endpointIndex = 0; // Gravitee's resetEndpointRetries
      this.hello(socket);
    });
    socket.on('message', (data, isBinary) => {
      if (!isBinary) {
        log.warn('Gravitee sent a text frame: closing (1003), as the exchange protocol requires');
        socket.close(1003, 'Unsupported text frame');
        return;
      }
      this.onMessage(socket, data as Buffer);
    });
    socket.on('close', (code, reasonBuffer) => {
      const reason = reasonBuffer.toString();
      const wasActive = this.active;
      if (this.socket === socket) {
        this.socket = undefined;
        this.active = false;
      }
      this.stopPing();
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(new Error(`the Gravitee connection closed before the reply to ${id}`));
        this.pending.delete(id);
      }
      if (this.stopped || this.stateValue === 'stopped') return;
      const goodBye = this.goodByeReconnect;
      this.goodByeReconnect = undefined;
      if (goodBye === false) {
        this.stateValue = 'idle';
        log.warn('Gravitee closed the channel without asking to reconnect: staying disconnected');
        return;
      }
      if (wasActive) {
        // An established channel dropped: reconnect at once, then back off if that fails.
        this.attempt = 0;
        log.warn(`the Gravitee connection closed (${code}${reason ? ` ${reason}` : ''}): reconnecting`);
      }
      this.retry(failure ?? (opened ? undefined : 'cannot connect to Gravitee'));
    });
  }

  private retry(why: string | undefined): void {
    if (this.stopped) return;
    this.attempt++;
    const delay = backoffDelay(this.attempt, this.backoff);
    this.stateValue = 'waiting';
    this.options.log.warn(`${why ? `${why}; ` : ''}retrying in ${(delay / 1000).toFixed(1)} s`);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  private hello(socket: WebSocket): void {
    const { config, log } = this.options;
    const command: ExchangeCommand = {
      id: randomUUID(),
      type: ExchangeType.HELLO,
      payload: { targetId: config.integrationId, provider: config.provider },
    };
    this.request(socket, command).then(
      (reply) => {
        if (reply.commandStatus === CommandStatus.SUCCEEDED) {
          this.active = true;
          this.attempt = 0;
          this.stateValue = 'connected';
          this.startPing(socket);
          log.info(`connected to Gravitee as integration ${config.integrationId}`);
          return;
        }
        const reason = `Gravitee refused integration ${config.integrationId}: ${reply.errorDetails ?? 'HELLO answered with ERROR'}`;
        log.error(reason);
        this.stopped = true;
        this.stateValue = 'stopped';
        socket.close(1000, 'hello refused');
        this.options.onFatal(reason);
      },
      (error: Error) => {
        log.warn(`HELLO failed: ${error.message}`);
        if (socket.readyState === WebSocket.OPEN) socket.close(1011, 'hello failed');
      },
    );
  }

  private startPing(socket: WebSocket): void {
    this.stopPing();
    this.pingTimer = setInterval(() => {
      if (socket.readyState === WebSocket.OPEN) socket.ping();
    }, this.options.pingIntervalMs ?? PING_INTERVAL_MS);
  }

  private stopPing(): void {
    clearInterval(this.pingTimer);
    this.pingTimer = undefined;
  }

  private onMessage(socket: WebSocket, data: Buffer): void {
    if (data.length === 0) return;
    let exchange: ReturnType<typeof decodeExchange>;
    try {
      exchange = decodeExchange(data);
    } catch (error) {
      const e = error as ExchangeDecodeError;
      this.options.log.warn(`ignoring a message from Gravitee: ${e.message}`);
      if (e instanceof ExchangeDecodeError && e.commandId) {
        this.reply(socket, failed({ id: e.commandId, type: e.exchangeType ?? 'UNKNOWN' }, e.message));
      }
      return;
    }
    if (exchange.kind === 'REPLY') {
      const waiting = this.pending.get(exchange.reply.commandId);
      if (!waiting) return; // late or unknown: Gravitee ignores those too
      clearTimeout(waiting.timer);
      this.pending.delete(exchange.reply.commandId);
      waiting.resolve(exchange.reply);
      return;
    }
    void this.onCommand(socket, exchange.command);
  }

  private async onCommand(socket: WebSocket, command: ExchangeCommand): Promise<void> {
    const { log } = this.options;
    switch (command.type) {
      case ExchangeType.PRIMARY:
        this.primary = command.payload.primary === true;
        log.info(`Gravitee made this bridge ${this.primary ? 'primary' : 'secondary'}`);
        this.reply(socket, succeeded(command, {}));
        return;
      case ExchangeType.HEALTH_CHECK: {
        const { healthy, detail } = this.options.health();
        this.reply(socket, succeeded(command, { healthy, detail }));
        return;
      }
      case ExchangeType.GOOD_BYE: {
        const reconnect = command.payload.reconnect === true;
        this.goodByeReconnect = reconnect;
        log.info(
          `Gravitee said good-bye${reconnect ? ': reconnecting' : ' without reconnect: staying disconnected'}`,
        );
        const targetId = typeof command.payload.targetId === 'string' ? command.payload.targetId : undefined;
        this.reply(socket, succeeded(command, targetId ? { targetId } : {}));
        socket.close(
          reconnect ? 1013 : 1000,
          reconnect
            ? 'GoodBye Command with reconnection requested.'
            : 'GoodBye Command without reconnection.',
        );
        return;
      }
      default: {
        let result: HandlerResult;
        try {
          result = await this.options.handle(command);
        } catch (error) {
          log.error(`${command.type} ${command.id} failed: ${(error as Error).message}`);
          result = { reply: failed(command, `INTERNAL: ${(error as Error).message}`) };
        }
        this.reply(socket, result.reply);
        result.afterReply?.();
      }
    }
  }
}

/** The reply a Java channel gives to a command type it has no handler for (`NoReply`). */
export function noHandlerReply(command: ExchangeCommand): ExchangeReply {
  return {
    commandId: command.id,
    type: ExchangeType.NO_REPLY,
    commandStatus: CommandStatus.ERROR,
    errorDetails: `No handler found for command type '${command.type}'. Ignoring`,
  };
}
