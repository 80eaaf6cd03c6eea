/**
 * Stand-in for Gravitee APIM's integration controller (the server end of the Gravitee Exchange
 * WebSocket protocol, v1), for the bridge's tests. Its surface is `contract.ts` beside this file.
 *
 * Written from Gravitee's public sources, never from this project's bridge:
 *
 * gravitee-io/gravitee-exchange (snapshot fba18ec2, 2026-08-19)
 * - gravitee-exchange-api/.../api/controller/ws/WebsocketControllerConstants.java: the upgrade path
 *   `/exchange/controller`, resolved under the endpoint's path by the connector (so
 *   `<endpoint>/exchange/controller`), and the header `X-Gravitee-Exchange-Protocol`.
 * - .../api/websocket/protocol/ProtocolVersion.java: `parse()` maps the header value `v1` to V1 and
 *   anything else, absent included, to LEGACY (the upgrade is NOT refused).
 * - .../api/websocket/protocol/v1/V1ProtocolAdapter.java: one exchange is
 *   `t:<COMMAND|REPLY>;;et:<exchange type>;;e:<json>`, split on `;;`, each field trimmed; `e:` is the
 *   last field (a `;;` inside the JSON is kept); an unknown `t:` is type UNKNOWN.
 * - .../api/websocket/protocol/legacy/LegacyProtocolAdapter.java: the legacy framing
 *   (`command: <json>`, `reply: <json>`) which a v1 message does not match.
 * - .../api/websocket/command/DefaultExchangeSerDe.java: the JSON is read by its `type` property,
 *   unknown properties ignored, unknown command types become UNKNOWN, nulls not written.
 * - .../api/websocket/channel/AbstractWebSocketChannel.java: a text message closes with 1003
 *   "Unsupported text frame"; an UNKNOWN exchange closes with 1002 "Exchange message unknown"; a
 *   command before HELLO closes with 1002 "Hello Command is first expected to initialize the
 *   exchange channel"; a command without a handler gets a NO_REPLY (ERROR) reply, an unknown one an
 *   UNKNOWN (ERROR) "Command unknown" reply; every write is one binary message; after an accepted
 *   HELLO the channel pings every 5 s; a command waits `replyTimeoutMs` for its reply; a GOOD_BYE
 *   command received by the controller closes the socket with 1013; `cleanChannel` closes with 1011.
 * - .../api/command/**: Command `{id, type, payload}` (reply timeout 60,000 ms), Reply `{commandId,
 *   type, commandStatus: PENDING|IN_PROGRESS|SUCCEEDED|ERROR (unknown → ERROR), errorDetails,
 *   payload}`; HELLO `{targetId}` → `{targetId}`; PRIMARY `{primary}` → `{}`; HEALTH_CHECK `{}` →
 *   `{healthy, detail}`; GOOD_BYE `{targetId, reconnect}` → `{targetId}`; NO_REPLY, UNKNOWN.
 * - gravitee-exchange-controller/.../websocket/WebSocketRequestHandler.java: authentication first
 *   (401 when invalid), then the protocol version from the header, then the upgrade;
 *   .../channel/WebSocketControllerChannel.java: the controller expects HELLO first; its `close()`
 *   sends GOOD_BYE `{targetId, reconnect: true}` and waits for the reply or the close.
 * - gravitee-exchange-controller/.../server/WebSocketControllerServerConfiguration.java:
 *   maxWebSocketFrameSize 65,536, maxWebSocketMessageSize 13,107,200, compressionSupported
 *   defaults to Vert.x's (false, HTTP compression), idle timeout 0.
 * - gravitee-exchange-controller-core/.../channel/ChannelManager.java: HEALTH_CHECK to every
 *   registered channel every 30,000 ms (`controller.channel.healthcheck.delay`); a reply with
 *   `healthy: false`, or no usable reply (timeout, closed, inactive channel), makes the channel
 *   inactive and unregisters it (its `close()`, i.e. GOOD_BYE reconnect then 1011); after HELLO the
 *   primary election sends PRIMARY `{primary}` to each channel of the target.
 * - gravitee-exchange-connector-websocket/.../WebSocketExchangeConnector.java and
 *   client/WebSocketClientConfiguration.java (the agent side, for reference): headers from
 *   configuration, reconnect with exponential backoff 1 s ×1.5 up to 300 s, reconnect unless closed
 *   with 1000 (or `autoReconnect`), same 65,536 / 13,107,200 limits.
 * - gravitee-exchange-connector-core/.../command/goodbye/GoodByeCommandHandler.java and
 *   AbstractWebSocketChannel.handleGoodByeCommand: the agent does not reply to GOOD_BYE, it closes
 *   with 1013 when asked to reconnect, else 1000.
 *
 * Vert.x / Netty, which the controller runs on: Netty's WebSocket08FrameDecoder closes with 1009
 * "Max frame length of 65536 has been exceeded." for a frame over the limit; Vert.x's
 * WebSocketImplBase drops a message whose fragments overflow maxWebSocketMessageSize (an exception,
 * no close) and splits every message it writes into frames of at most maxWebSocketFrameSize.
 *
 * gravitee-io/gravitee-integration-api (snapshot 51b53c1c, 2026-05-15)
 * - command/**: HELLO `{targetId, provider}`; DISCOVER `{}` → `{apis, isPartialDiscovery}`;
 *   START_INGEST `{ingestJobId, apiIds}` → `{ingestJobId, total}`; INGEST `{ingestJobId, apis, done}`
 *   → `{}`; SUBSCRIBE `{apiId, subscription}` → `{subscription}`; UNSUBSCRIBE `{apiId,
 *   subscription}` → `{}`; websocket/command/IntegrationExchangeSerDe.java registers them.
 * - model/**: Api `{uniqueId, id, name, version, description, connectionDetails: {string: string},
 *   type: PROXY|MESSAGE, pages, plans, metadata: [Metadata]}`; Page `{pageType:
 *   ASCIIDOC|ASYNCAPI|MARKDOWN|MARKDOWN_TEMPLATE|SWAGGER, content, filename}`; Plan `{id, name,
 *   description, planSecurityType: API_KEY|OAUTH2|JWT, characteristics: [string]}`; Metadata `{name,
 *   value, format: STRING|NUMERIC|BOOLEAN|DATE|MAIL|URL}`; Subscription `{graviteeSubscriptionId,
 *   graviteeApplicationId, graviteeApplicationName, type: API_KEY|OAUTH|JWT, metadata: {string:
 *   string}}` (metadata key `planId`); SubscriptionResult `{graviteeSubscriptionId, metadata, apiKey}`.
 *
 * gravitee-io/gravitee-api-management, gravitee-apim-rest-api-integration-controller
 * - websocket/auth/IntegrationWebsocketControllerAuthentication.java: the token is the
 *   `Authorization` header after its first 6 characters (`bearer`), trimmed; unknown → 401.
 * - command/IntegrationControllerCommandHandlerFactory.java: the controller handles HELLO and INGEST.
 * - command/hello/HelloCommandHandler.java with core/integration/use_case/CheckIntegrationUseCase.java:
 *   HELLO replies `{targetId}`, or ERROR "Integration [id=<id>] not found" / "Integration [id=<id>]
 *   does not match. Expected provider [provider=<provider>]".
 * - command/ingest/IngestCommandHandler.java: INGEST replies SUCCEEDED `{}`, or ERROR with the
 *   exception's message; core/integration/use_case/IngestFederatedApisUseCase.java: a batch whose
 *   `ingestJobId` is no job APIM started is ignored (still SUCCEEDED); each metadata entry's `format`
 *   is switched on (null → NullPointerException → ERROR); only SWAGGER and ASYNCAPI pages are kept,
 *   named by `filename`.
 * - The seed's compose file: the endpoint is the management API URL ending in `/integration-controller`;
 *   the APIM Helm chart's federation ingress routes `/integration-controller(/.*)?` to the controller's
 *   port, so the controller itself sees `/exchange/controller`. The stand-in plays APIM and its ingress.
 *
 * What the stand-in simplifies: one organisation (every known token may use every integration),
 * no licence check, a health-check timer per connection (a channel without an accepted HELLO is
 * unregistered `helloGraceMs` after the upgrade; HEALTH_CHECK one interval after HELLO, then one
 * interval after each reply) rather than one for the whole controller, `stop()` drops the sockets
 * (Gravitee unregisters each channel with GOOD_BYE), the legacy protocol only recognised (any
 * message on a legacy channel closes it with 1002), no TLS. Frames are measured on the raw socket:
 * `ws` counts `maxPayload` per message, not per frame, so the stand-in reads the frame headers itself
 * and reassembles the fragments it checks.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import type {
  AgentSession,
  ExchangeCommand,
  ExchangeReply,
  GraviteeController,
  GraviteeControllerOptions,
  ProtocolViolation,
  StartGraviteeController,
} from './contract.js';

/** WebSocketControllerServerConfiguration defaults. */
export const GRAVITEE_MAX_FRAME_BYTES = 65_536;
export const GRAVITEE_MAX_MESSAGE_BYTES = 13_107_200;
/** WebsocketControllerConstants. */
export const GRAVITEE_EXCHANGE_PATH = '/exchange/controller';
export const GRAVITEE_PROTOCOL_HEADER = 'x-gravitee-exchange-protocol';
/** The path of APIM's integration controller endpoint (the seed's `.../integration-controller`). */
export const GRAVITEE_ENDPOINT_PATH = '/integration-controller';
/** Command.COMMAND_REPLY_TIMEOUT_MS, ChannelManager's health-check delay, the channel's ping delay. */
export const GRAVITEE_REPLY_TIMEOUT_MS = 60_000;
export const GRAVITEE_HEALTH_CHECK_MS = 30_000;
export const GRAVITEE_PING_MS = 5_000;

const DEFAULT_WAIT_MS = 20_000;
/** Past this `ws` itself closes with 1009; below it the stand-in applies Vert.x's message limit. */
const WS_SAFETY_MAX_PAYLOAD = 4 * GRAVITEE_MAX_MESSAGE_BYTES;

/** Command types the integration controller's serde knows (DefaultExchangeSerDe + IntegrationExchangeSerDe). */
const KNOWN_COMMAND_TYPES = new Set([
  'HELLO',
  'GOOD_BYE',
  'HEALTH_CHECK',
  'PRIMARY',
  'UNKNOWN',
  'DISCOVER',
  'START_INGEST',
  'INGEST',
  'SUBSCRIBE',
  'UNSUBSCRIBE',
]);

/** Extensions of the contract this implementation offers (all optional). */
export interface GraviteeControllerExtraOptions {
  /** Path of the endpoint (default `/integration-controller`); the upgrade is `<path>/exchange/controller`. */
  endpointPath?: string;
  /**
   * How long a channel may stay without an accepted HELLO before the controller unregisters it
   * (GOOD_BYE, then 1011). Gravitee does it at the next health-check tick; the default is
   * max(healthCheckIntervalMs, 5 s) so a small test interval does not race the agent's HELLO.
   */
  helloGraceMs?: number;
  /** Interval of the controller's pings after an accepted HELLO (Gravitee: 5 s). */
  pingIntervalMs?: number;
  /**
   * Answers an agent command (after HELLO) instead of the controller's handlers; return undefined to
   * keep the default (INGEST → SUCCEEDED `{}`, other types NO_REPLY or UNKNOWN as Gravitee does).
   */
  onAgentCommand?: (command: ExchangeCommand, session: AgentSession) => ExchangeReply | undefined;
}

/** What a session offers beyond the contract. */
export interface GraviteeAgentSession extends AgentSession {
  /** Replies to controller commands (PRIMARY, HEALTH_CHECK, GOOD_BYE, DISCOVER, ...), in order. */
  readonly replies: ExchangeReply[];
  /** Whether the controller made this channel the target's primary (PRIMARY `{primary: true}` answered). */
  readonly primary: boolean;
  /** Pings the agent sent (Gravitee's connector pings every 5 s). */
  readonly pingsReceived: number;
  send(type: string, payload?: Record<string, unknown>, timeoutMs?: number): Promise<ExchangeReply>;
}

export type GraviteeStandInOptions = GraviteeControllerOptions & GraviteeControllerExtraOptions;

/** Waiting lists: each `key` consumes the items it matched in order ("already received ones first"). */
class Inbox<T> {
  readonly items: T[] = [];
  private readonly cursors = new Map<string, number>();
  private waiters: Array<{ key: string; match: (item: T) => boolean; resolve: (item: T) => void }> = [];

  push(item: T): void {
    const index = this.items.push(item) - 1;
    const served = new Set<string>();
    this.waiters = this.waiters.filter((w) => {
      if (served.has(w.key) || !w.match(item) || (this.cursors.get(w.key) ?? 0) > index) return true;
      served.add(w.key);
      this.cursors.set(w.key, index + 1);
      w.resolve(item);
      return false;
    });
  }

  next(key: string, match: (item: T) => boolean, timeoutMs: number, what: string): Promise<T> {
    const from = this.cursors.get(key) ?? 0;
    for (let i = from; i < this.items.length; i++) {
      const item = this.items[i] as T;
      if (match(item)) {
        this.cursors.set(key, i + 1);
        return Promise.resolve(item);
      }
    }
    return new Promise<T>((resolve, reject) => {
      const waiter = {
        key,
        match,
        resolve: (item: T) => {
          clearTimeout(timer);
          resolve(item);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`Gravitee stand-in: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}

interface FrameEvents {
  frame(payloadBytes: number, opcode: number): void;
  /** A whole data message; `data` undefined when it overflowed the message limit and was dropped. */
  message(opcode: number, data: Buffer | undefined, bytes: number): void;
  frameTooLarge(payloadBytes: number): void;
  messageTooLarge(bytes: number): void;
}

/**
 * Reads the client's frames from the raw socket bytes (RFC 6455 §5.2): checks each frame's payload
 * length against the frame limit, reassembles fragmented data messages (unmasking them) against the
 * message limit, and reports whole messages. `ws` parses the same bytes for the control protocol.
 */
export class FrameReader {
  private readonly header = Buffer.alloc(14);
  private headerBytes = 0;
  private inPayload = false;
  private remaining = 0;
  private mask: Buffer | undefined;
  private maskOffset = 0;
  private opcode = 0;
  private fin = false;
  private message: { opcode: number; chunks: Buffer[]; bytes: number; dropped: boolean } | undefined;
  private stopped = false;

  constructor(
    private readonly events: FrameEvents,
    private readonly maxFrameBytes = GRAVITEE_MAX_FRAME_BYTES,
    private readonly maxMessageBytes = GRAVITEE_MAX_MESSAGE_BYTES,
  ) {}

  stop(): void {
    this.stopped = true;
    this.message = undefined;
  }

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && !this.stopped) {
      if (!this.inPayload) {
        const want = this.headerLength();
        const take = Math.min(want - this.headerBytes, chunk.length - offset);
        chunk.copy(this.header, this.headerBytes, offset, offset + take);
        this.headerBytes += take;
        offset += take;
        if (this.headerBytes < this.headerLength()) continue;
        this.startFrame();
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - offset);
      const message = this.message;
      if (this.opcode < 0x08 && message && !message.dropped) {
        const part = Buffer.from(chunk.subarray(offset, offset + take));
        const mask = this.mask;
        if (mask)
          for (let i = 0; i < part.length; i++)
            part[i] = (part[i] ?? 0) ^ (mask[(this.maskOffset + i) & 3] ?? 0);
        message.chunks.push(part);
      }
      this.maskOffset += take;
      this.remaining -= take;
      offset += take;
      if (this.remaining === 0) this.endFrame();
    }
  }

  private headerLength(): number {
    if (this.headerBytes < 2) return 2;
    const second = this.header[1] ?? 0;
    const len7 = second & 0x7f;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (second & 0x80 ? 4 : 0);
  }

  private startFrame(): void {
    const first = this.header[0] ?? 0;
    const second = this.header[1] ?? 0;
    this.fin = (first & 0x80) !== 0;
    this.opcode = first & 0x0f;
    const len7 = second & 0x7f;
    let length = len7;
    let at = 2;
    if (len7 === 126) {
      length = this.header.readUInt16BE(2);
      at = 4;
    } else if (len7 === 127) {
      length = Number(this.header.readBigUInt64BE(2));
      at = 10;
    }
    this.mask = second & 0x80 ? Buffer.from(this.header.subarray(at, at + 4)) : undefined;
    this.maskOffset = 0;
    this.headerBytes = 0;
    if (length > this.maxFrameBytes) {
      this.stop();
      this.events.frameTooLarge(length);
      return;
    }
    this.events.frame(length, this.opcode);
    if (this.opcode === 0x01 || this.opcode === 0x02) {
      this.message = { opcode: this.opcode, chunks: [], bytes: 0, dropped: false };
    }
    const message = this.message;
    if (this.opcode < 0x08 && message) {
      message.bytes += length;
      if (!message.dropped && message.bytes > this.maxMessageBytes) {
        message.dropped = true;
        message.chunks = [];
        this.events.messageTooLarge(message.bytes);
      }
    }
    this.remaining = length;
    this.inPayload = true;
    if (length === 0) this.endFrame();
  }

  private endFrame(): void {
    this.inPayload = false;
    const message = this.message;
    if (this.opcode < 0x08 && this.fin && message) {
      this.message = undefined;
      const data = message.dropped ? undefined : Buffer.concat(message.chunks);
      this.events.message(message.opcode, data, message.bytes);
    }
  }
}

/** The v1 reading of V1ProtocolAdapter.read. */
export function readV1(text: string): {
  type: 'COMMAND' | 'REPLY' | 'UNKNOWN';
  exchangeType?: string;
  exchange?: string;
} {
  const lines = text.split(';;');
  let type: 'COMMAND' | 'REPLY' | 'UNKNOWN' = 'UNKNOWN';
  let exchangeType: string | undefined;
  let exchange: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.startsWith('t:')) {
      const value = line.slice(2).trim();
      type = value === 'COMMAND' || value === 'REPLY' ? value : 'UNKNOWN';
    } else if (line.startsWith('et:')) {
      exchangeType = line.slice(3).trim();
    } else if (line.startsWith('e:')) {
      exchange = lines.slice(i).join(';;').slice(2).trim();
      break;
    }
  }
  return { type, exchangeType, exchange };
}

/** The v1 writing of V1ProtocolAdapter.write. */
export function writeV1(type: 'COMMAND' | 'REPLY', exchangeType: string, exchange: object): Buffer {
  return Buffer.from(`t:${type};;et:${exchangeType};;e:${JSON.stringify(exchange)}`, 'utf8');
}

// ---- What Jackson would refuse when reading the integration models (integration-api model/**) ----

type Check = (value: unknown, path: string) => string | undefined;
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const nullable =
  (check: Check): Check =>
  (v, p) =>
    v === undefined || v === null ? undefined : check(v, p);
/** Jackson coerces scalars into a String field; an object or array is refused. */
const str: Check = nullable((v, p) =>
  typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
    ? undefined
    : `${p}: expected a string`,
);
const bool: Check = nullable((v, p) =>
  typeof v === 'boolean' || typeof v === 'number' || v === 'true' || v === 'false'
    ? undefined
    : `${p}: expected a boolean`,
);
const long: Check = nullable((v, p) =>
  (typeof v === 'number' && Number.isInteger(v)) || (typeof v === 'string' && /^-?\d+$/.test(v))
    ? undefined
    : `${p}: expected an integer`,
);
const oneOf = (...values: string[]): Check =>
  nullable((v, p) =>
    typeof v === 'string' && values.includes(v)
      ? undefined
      : `${p}: expected one of ${values.join('|')}, got ${JSON.stringify(v)}`,
  );
const listOf = (check: Check): Check =>
  nullable((v, p) => {
    if (!Array.isArray(v)) return `${p}: expected an array`;
    for (let i = 0; i < v.length; i++) {
      const problem = check(v[i], `${p}[${i}]`);
      if (problem) return problem;
    }
    return undefined;
  });
const stringMap: Check = nullable((v, p) => {
  if (!isObject(v)) return `${p}: expected an object of strings`;
  for (const [k, item] of Object.entries(v)) {
    const problem = str(item, `${p}.${k}`);
    if (problem) return problem;
  }
  return undefined;
});
const shape = (fields: Record<string, Check>): Check =>
  nullable((v, p) => {
    if (!isObject(v)) return `${p}: expected an object`;
    for (const [k, check] of Object.entries(fields)) {
      const problem = check(v[k], `${p}.${k}`);
      if (problem) return problem;
    }
    return undefined;
  });

const page = shape({
  pageType: oneOf('ASCIIDOC', 'ASYNCAPI', 'MARKDOWN', 'MARKDOWN_TEMPLATE', 'SWAGGER'),
  content: str,
  filename: str,
});
const plan = shape({
  id: str,
  name: str,
  description: str,
  planSecurityType: oneOf('API_KEY', 'OAUTH2', 'JWT'),
  characteristics: listOf(str),
});
const metadata = shape({
  name: str,
  value: str,
  format: oneOf('STRING', 'NUMERIC', 'BOOLEAN', 'DATE', 'MAIL', 'URL'),
});
export const apiModel = shape({
  uniqueId: str,
  id: str,
  name: str,
  version: str,
  description: str,
  connectionDetails: stringMap,
  type: oneOf('PROXY', 'MESSAGE'),
  pages: listOf(page),
  plans: listOf(plan),
  metadata: listOf(metadata),
});
const subscriptionResult = shape({ graviteeSubscriptionId: str, metadata: stringMap, apiKey: str });

/** Payload classes of the commands the agent sends (HelloCommand.Payload, IngestCommand.Payload, GoodByeCommandPayload). */
const AGENT_COMMAND_PAYLOADS: Record<string, Check> = {
  HELLO: shape({ targetId: str, provider: str }),
  INGEST: shape({ ingestJobId: str, apis: listOf(apiModel), done: bool }),
  GOOD_BYE: shape({ targetId: str, reconnect: bool }),
};
/** Payload classes of the replies the agent sends to controller commands. */
const REPLY_PAYLOADS: Record<string, Check> = {
  HEALTH_CHECK: shape({ healthy: bool, detail: str }),
  PRIMARY: shape({}),
  GOOD_BYE: shape({ targetId: str }),
  DISCOVER: shape({ apis: listOf(apiModel), isPartialDiscovery: bool }),
  START_INGEST: shape({ ingestJobId: str, total: long }),
  SUBSCRIBE: shape({ subscription: subscriptionResult }),
  UNSUBSCRIBE: shape({}),
};

const asBoolean = (v: unknown): boolean => v === true || v === 'true' || (typeof v === 'number' && v !== 0);

interface Pending {
  type: string;
  resolve: (reply: ExchangeReply) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  dropped?: string;
}

class Channel implements GraviteeAgentSession {
  targetId = '';
  hello: Record<string, unknown> = {};
  readonly headers: Record<string, string>;
  readonly agentCommands: ExchangeCommand[];
  readonly healthReplies: ExchangeReply[];
  readonly replies: ExchangeReply[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  maxFrameBytes = 0;
  maxMessageBytes = 0;
  pingsReceived = 0;
  primary = false;
  active = false;
  open = true;

  private readonly commands = new Inbox<ExchangeCommand>();
  private readonly health = new Inbox<ExchangeReply>();
  private readonly pending = new Map<string, Pending>();
  private readonly reader: FrameReader;
  private healthTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private unregistering: Promise<void> | undefined;

  constructor(
    private readonly controller: StandIn,
    private readonly ws: WebSocket,
    socket: Socket,
    request: IncomingMessage,
    private readonly v1: boolean,
  ) {
    this.agentCommands = this.commands.items;
    this.healthReplies = this.health.items;
    this.headers = Object.fromEntries(
      Object.entries(request.headers).map(([k, v]) => [
        k.toLowerCase(),
        Array.isArray(v) ? v.join(', ') : (v ?? ''),
      ]),
    );
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.onClosed();
        resolve({ code, reason: reason.toString('utf8') });
      });
    });
    ws.on('error', () => {});
    ws.on('ping', () => {
      this.pingsReceived++;
    });
    this.reader = new FrameReader({
      frame: (bytes, opcode) => {
        if (opcode < 0x08) this.maxFrameBytes = Math.max(this.maxFrameBytes, bytes);
      },
      message: (opcode, data, bytes) => {
        this.maxMessageBytes = Math.max(this.maxMessageBytes, bytes);
        if (data) this.onMessage(opcode, data);
      },
      frameTooLarge: (bytes) => {
        this.maxFrameBytes = Math.max(this.maxFrameBytes, bytes);
        this.violation(
          'frame-too-large',
          `a frame of ${bytes} bytes (limit ${GRAVITEE_MAX_FRAME_BYTES}): closed 1009`,
        );
        this.closeWith(1009, `Max frame length of ${GRAVITEE_MAX_FRAME_BYTES} has been exceeded.`);
      },
      messageTooLarge: (bytes) => {
        this.violation(
          'message-too-large',
          `a message of ${bytes}+ bytes (limit ${GRAVITEE_MAX_MESSAGE_BYTES}): dropped, as Vert.x drops it`,
        );
      },
    });
    // Before ws's own listener: ws unmasks payloads in place in the chunk it is handed.
    socket.prependListener('data', (chunk: Buffer) => this.reader.push(chunk));
    this.scheduleHealthCheck(controller.helloGraceMs);
  }

  // ---- AgentSession ----

  send(type: string, payload: Record<string, unknown> = {}, timeoutMs?: number): Promise<ExchangeReply> {
    return this.sendCommand(type, payload, timeoutMs ?? this.controller.replyTimeoutMs, false);
  }

  nextAgentCommand(type: string, timeoutMs = DEFAULT_WAIT_MS): Promise<ExchangeCommand> {
    return this.commands.next(
      type,
      (c) => c.type === type,
      timeoutMs,
      `${type} command from ${this.targetId}`,
    );
  }

  nextHealthReply(timeoutMs = DEFAULT_WAIT_MS): Promise<ExchangeReply> {
    return this.health.next('health', () => true, timeoutMs, `HEALTH_CHECK reply from ${this.targetId}`);
  }

  async goodBye(reconnect: boolean): Promise<void> {
    await this.unregister(reconnect);
    await this.closed;
  }

  drop(): void {
    this.ws.terminate();
  }

  // ---- the channel ----

  private violation(kind: ProtocolViolation['kind'], detail: string): void {
    this.controller.violations.push({
      kind,
      detail: this.targetId ? `${detail} (target ${this.targetId})` : detail,
    });
  }

  private closeWith(code: number, reason: string): void {
    this.reader.stop();
    this.active = false;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
    const force = setTimeout(() => this.ws.terminate(), 2_000);
    force.unref();
  }

  private onClosed(): void {
    this.open = false;
    const wasPrimary = this.primary;
    this.active = false;
    this.reader.stop();
    clearTimeout(this.healthTimer);
    clearInterval(this.pingTimer);
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error(`Gravitee stand-in: channel closed before the reply to ${p.type} ${id}`));
    }
    this.pending.clear();
    this.controller.channelGone(this, wasPrimary);
  }

  private write(kind: 'COMMAND' | 'REPLY', exchangeType: string, exchange: object): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    const data = writeV1(kind, exchangeType, exchange);
    // Vert.x's writeBinaryMessage: frames of at most maxWebSocketFrameSize, continuation after the first.
    for (let offset = 0; ; offset += GRAVITEE_MAX_FRAME_BYTES) {
      const end = Math.min(offset + GRAVITEE_MAX_FRAME_BYTES, data.length);
      this.ws.send(data.subarray(offset, end), { binary: true, fin: end >= data.length });
      if (end >= data.length) break;
    }
  }

  private reply(reply: ExchangeReply): void {
    this.write('REPLY', reply.type, reply);
  }

  sendCommand(
    type: string,
    payload: Record<string, unknown>,
    timeoutMs: number,
    ignoreActive: boolean,
  ): Promise<ExchangeReply> {
    if (!this.open) return Promise.reject(new Error(`Gravitee stand-in: channel closed, ${type} not sent`));
    if (!ignoreActive && !this.active)
      return Promise.reject(new Error(`Gravitee stand-in: channel inactive, ${type} not sent`));
    const id = randomUUID();
    if (type === 'START_INGEST' && typeof payload.ingestJobId === 'string')
      this.controller.ingestJobs.add(payload.ingestJobId);
    return new Promise<ExchangeReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        const p = this.pending.get(id);
        this.pending.delete(id);
        const why = p?.dropped ? ` (a reply was dropped: ${p.dropped})` : '';
        reject(new Error(`Gravitee stand-in: no reply to ${type} ${id} within ${timeoutMs} ms${why}`));
      }, timeoutMs);
      this.pending.set(id, { type, resolve, reject, timer });
      this.write('COMMAND', type, { id, type, payload });
    });
  }

  private onMessage(opcode: number, data: Buffer): void {
    if (opcode === 0x01) {
      this.violation('text-frame', 'a text message: closed 1003');
      this.closeWith(1003, 'Unsupported text frame');
      return;
    }
    if (data.length === 0) return;
    const text = data.toString('utf8');
    if (!this.v1) {
      this.violation('malformed-exchange', 'a message on a legacy-protocol channel: closed 1002');
      this.closeWith(1002, 'Exchange message unknown');
      return;
    }
    const read = readV1(text);
    if (read.type === 'UNKNOWN') {
      this.violation(
        'malformed-exchange',
        `no t:COMMAND|REPLY in ${JSON.stringify(text.slice(0, 80))}: closed 1002`,
      );
      this.closeWith(1002, 'Exchange message unknown');
      return;
    }
    let exchange: unknown;
    if (read.exchange !== undefined) {
      try {
        exchange = JSON.parse(read.exchange);
      } catch (error) {
        this.violation('malformed-exchange', `e: is not JSON (${(error as Error).message}): dropped`);
        return;
      }
    }
    if (read.type === 'COMMAND') this.onCommand(exchange);
    else this.onReply(exchange);
  }

  private onCommand(exchange: unknown): void {
    if (exchange === undefined || exchange === null) {
      this.violation('malformed-exchange', 'a COMMAND without e:: closed 1002');
      this.closeWith(1002, 'Unrecognized incoming exchange');
      return;
    }
    if (!isObject(exchange)) {
      this.violation('malformed-exchange', 'a COMMAND whose e: is not an object: dropped');
      return;
    }
    const problem =
      str(exchange.id, 'id') ??
      str(exchange.type, 'type') ??
      nullable(shape({}))(exchange.payload, 'payload');
    const known = typeof exchange.type === 'string' && KNOWN_COMMAND_TYPES.has(exchange.type);
    const type = known ? String(exchange.type) : 'UNKNOWN';
    const check = AGENT_COMMAND_PAYLOADS[type];
    const payloadProblem = problem ?? check?.(exchange.payload, 'payload');
    if (payloadProblem) {
      this.violation(
        'malformed-exchange',
        `${type} command: ${payloadProblem}: dropped (Jackson refuses it)`,
      );
      return;
    }
    const command: ExchangeCommand = {
      id: exchange.id === undefined || exchange.id === null ? '' : String(exchange.id),
      type: typeof exchange.type === 'string' ? exchange.type : 'UNKNOWN',
      payload: isObject(exchange.payload) ? exchange.payload : {},
    };
    if (!this.active && type !== 'HELLO') {
      this.violation('command-before-hello', `${command.type} before an accepted HELLO: closed 1002`);
      this.closeWith(1002, 'Hello Command is first expected to initialize the exchange channel');
      return;
    }
    if (type === 'HELLO') {
      this.onHello(command);
      return;
    }
    this.commands.push(command);
    if (type === 'GOOD_BYE') {
      // No GOOD_BYE handler in the integration controller: close 1013, then clean the channel.
      this.closeWith(1013, 'GoodBye Command with reconnection requested.');
      return;
    }
    const custom = this.controller.onAgentCommand?.(command, this);
    if (custom) this.reply(custom);
    else if (type === 'INGEST') this.reply(this.ingest(command));
    else if (type === 'UNKNOWN')
      this.reply({
        commandId: command.id,
        type: 'UNKNOWN',
        commandStatus: 'ERROR',
        errorDetails: 'Command unknown',
        payload: {},
      });
    else
      this.reply({
        commandId: command.id,
        type: 'NO_REPLY',
        commandStatus: 'ERROR',
        errorDetails: `No handler found for command type '${type}'. Ignoring`,
        payload: {},
      });
  }

  /** IngestCommandHandler + IngestFederatedApisUseCase, as far as the agent can tell them apart. */
  private ingest(command: ExchangeCommand): ExchangeReply {
    const jobId = command.payload.ingestJobId;
    if (typeof jobId !== 'string' || !this.controller.ingestJobs.has(jobId)) {
      this.violation(
        'malformed-exchange',
        `INGEST for ingestJobId ${JSON.stringify(jobId)}, no job started by START_INGEST: APIM ingests nothing`,
      );
      return { commandId: command.id, type: 'INGEST', commandStatus: 'SUCCEEDED', payload: {} };
    }
    const apis = Array.isArray(command.payload.apis) ? command.payload.apis : [];
    for (const [i, api] of apis.entries()) {
      const entries = isObject(api) && Array.isArray(api.metadata) ? api.metadata : [];
      for (const [j, entry] of entries.entries()) {
        if (isObject(entry) && entry.format !== undefined && entry.format !== null) continue;
        const where = `apis[${i}].metadata[${j}].format`;
        this.violation('malformed-exchange', `INGEST: ${where} is null: APIM's ingest fails on it`);
        return {
          commandId: command.id,
          type: 'INGEST',
          commandStatus: 'ERROR',
          errorDetails: `NullPointerException: ${where} is null (stand-in wording)`,
        };
      }
    }
    return { commandId: command.id, type: 'INGEST', commandStatus: 'SUCCEEDED', payload: {} };
  }

  private onHello(command: ExchangeCommand): void {
    const targetId =
      command.payload.targetId === undefined || command.payload.targetId === null
        ? null
        : String(command.payload.targetId);
    const provider = command.payload.provider;
    const integrations = this.controller.integrations;
    const integration =
      targetId !== null && Object.hasOwn(integrations, targetId) ? integrations[targetId] : undefined;
    let error: string | undefined;
    if (!integration) error = `Integration [id=${targetId}] not found`;
    else if (integration.provider !== provider)
      error = `Integration [id=${targetId}] does not match. Expected provider [provider=${integration.provider}]`;
    if (error !== undefined || targetId === null) {
      this.controller.helloErrors.push({ targetId: targetId ?? '', reason: error ?? '' });
      this.reply({ commandId: command.id, type: 'HELLO', commandStatus: 'ERROR', errorDetails: error });
      return;
    }
    this.reply({ commandId: command.id, type: 'HELLO', commandStatus: 'SUCCEEDED', payload: { targetId } });
    const first = !this.active;
    this.targetId = targetId;
    this.hello = command.payload;
    this.active = true;
    if (!first) return;
    this.pingTimer = setInterval(() => {
      if (this.ws.readyState === WebSocket.OPEN) this.ws.ping();
    }, this.controller.pingIntervalMs);
    this.scheduleHealthCheck();
    this.controller.sessionAccepted(this);
    void this.electPrimary(!this.controller.hasPrimary(targetId, this));
  }

  async electPrimary(primary: boolean): Promise<void> {
    try {
      const reply = await this.sendCommand('PRIMARY', { primary }, this.controller.replyTimeoutMs, false);
      this.primary = primary && reply.commandStatus === 'SUCCEEDED';
    } catch {
      this.primary = false;
    }
  }

  private onReply(exchange: unknown): void {
    if (!isObject(exchange)) {
      this.violation('malformed-exchange', 'a REPLY whose e: is not an object: closed 1011');
      this.closeWith(1011, 'Unexpected error while handling incoming websocket exchange');
      return;
    }
    const commandId =
      exchange.commandId === undefined || exchange.commandId === null ? '' : String(exchange.commandId);
    const pending = this.pending.get(commandId);
    if (!pending) return; // AbstractWebSocketChannel.receiveReply: no emitter, ignored.
    const type = typeof exchange.type === 'string' ? exchange.type : 'UNKNOWN';
    const envelope = str(exchange.commandId, 'commandId') ?? str(exchange.errorDetails, 'errorDetails');
    const check = REPLY_PAYLOADS[type];
    const problem =
      envelope ?? nullable(shape({}))(exchange.payload, 'payload') ?? check?.(exchange.payload, 'payload');
    if (problem) {
      pending.dropped = `${type} reply: ${problem}`;
      this.violation('malformed-exchange', `${type} reply: ${problem}: dropped (Jackson refuses it)`);
      return;
    }
    const status = exchange.commandStatus === 'SUCCEEDED' ? 'SUCCEEDED' : 'ERROR';
    if (
      typeof exchange.commandStatus === 'string' &&
      !['SUCCEEDED', 'ERROR'].includes(exchange.commandStatus)
    )
      this.violation(
        'malformed-exchange',
        `${type} reply: commandStatus ${exchange.commandStatus} read as ERROR`,
      );
    if (type !== pending.type && !['NO_REPLY', 'UNKNOWN'].includes(type))
      this.violation('malformed-exchange', `a ${type} reply to a ${pending.type} command`);
    const reply: ExchangeReply = { commandId, type, commandStatus: status };
    if (typeof exchange.errorDetails === 'string') reply.errorDetails = exchange.errorDetails;
    if (isObject(exchange.payload)) reply.payload = exchange.payload;
    clearTimeout(pending.timer);
    this.pending.delete(commandId);
    this.replies.push(reply);
    pending.resolve(reply);
  }

  // ---- ChannelManager: health checks and unregistering ----

  private scheduleHealthCheck(delayMs = this.controller.healthCheckIntervalMs): void {
    clearTimeout(this.healthTimer);
    this.healthTimer = setTimeout(() => void this.healthCheck(), delayMs);
  }

  private async healthCheck(): Promise<void> {
    if (!this.open) return;
    if (!this.active) {
      await this.unregister(true);
      return;
    }
    let healthy = false;
    try {
      const reply = await this.sendCommand('HEALTH_CHECK', {}, this.controller.replyTimeoutMs, false);
      healthy = reply.type === 'HEALTH_CHECK' && asBoolean(reply.payload?.healthy);
      if (!healthy) this.active = false; // before the waiters see the reply
      this.health.push(reply);
    } catch {
      this.active = false;
    }
    if (healthy && this.open) this.scheduleHealthCheck();
    else await this.unregister(true);
  }

  /** WebSocketControllerChannel.close(): GOOD_BYE, wait for the reply or the close, then clean (1011). */
  unregister(reconnect: boolean): Promise<void> {
    if (!this.unregistering) {
      const wasPrimary = this.primary;
      this.active = false;
      clearTimeout(this.healthTimer);
      if (wasPrimary) this.controller.channelGone(this, true);
      this.unregistering = (async () => {
        if (this.open) {
          const payload: Record<string, unknown> = { reconnect };
          if (this.targetId) payload.targetId = this.targetId;
          await this.sendCommand('GOOD_BYE', payload, this.controller.replyTimeoutMs, true).catch(
            () => undefined,
          );
        }
        if (this.open) this.closeWith(1011, '');
      })();
    }
    return this.unregistering;
  }
}

class StandIn implements GraviteeController {
  readonly endpoint: string;
  readonly helloErrors: Array<{ targetId: string; reason: string }> = [];
  readonly violations: ProtocolViolation[] = [];
  /** Ingest jobs started by a START_INGEST the controller sent (APIM's AsyncJob). */
  readonly ingestJobs = new Set<string>();
  upgradeAttempts = 0;
  readonly integrations: Record<string, { provider: string }>;
  readonly healthCheckIntervalMs: number;
  readonly replyTimeoutMs: number;
  readonly pingIntervalMs: number;
  readonly helloGraceMs: number;
  readonly onAgentCommand: GraviteeControllerExtraOptions['onAgentCommand'];
  private readonly channels = new Set<Channel>();
  private readonly sessions = new Inbox<Channel>();
  private readonly tokens: Set<string>;
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: WS_SAFETY_MAX_PAYLOAD,
    clientTracking: false,
  });

  constructor(
    private readonly server: Server,
    options: GraviteeStandInOptions,
    private readonly upgradePath: string,
  ) {
    const { port } = server.address() as AddressInfo;
    this.endpoint = `http://127.0.0.1:${port}${options.endpointPath ?? GRAVITEE_ENDPOINT_PATH}`;
    this.tokens = new Set(options.tokens);
    this.integrations = options.integrations;
    this.healthCheckIntervalMs = options.healthCheckIntervalMs ?? GRAVITEE_HEALTH_CHECK_MS;
    this.replyTimeoutMs = options.replyTimeoutMs ?? GRAVITEE_REPLY_TIMEOUT_MS;
    this.pingIntervalMs = options.pingIntervalMs ?? GRAVITEE_PING_MS;
    this.helloGraceMs = options.helloGraceMs ?? Math.max(this.healthCheckIntervalMs, 5_000);
    this.onAgentCommand = options.onAgentCommand;
    server.on('request', (req, res) => {
      const allowed = this.pathOf(req) === this.upgradePath && this.authorized(req);
      res.writeHead(this.pathOf(req) !== this.upgradePath ? 404 : allowed ? 400 : 401).end();
    });
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
  }

  private pathOf(req: IncomingMessage): string {
    return new URL(req.url ?? '/', 'http://stand-in').pathname;
  }

  /** IntegrationWebsocketControllerAuthentication: the header after `bearer`, trimmed. */
  private authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization;
    if (header === undefined || header.length < 'bearer'.length) return false;
    return this.tokens.has(header.slice('bearer'.length).trim());
  }

  private refuse(socket: Socket, status: number, text: string): void {
    socket.on('error', () => {});
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    this.upgradeAttempts++;
    if (this.pathOf(req) !== this.upgradePath) {
      this.refuse(socket, 404, 'Not Found');
      return;
    }
    if (!this.authorized(req)) {
      this.violations.push({
        kind: 'unauthorized',
        detail:
          req.headers.authorization === undefined ? 'no Authorization header: 401' : 'unknown token: 401',
      });
      this.refuse(socket, 401, 'Unauthorized');
      return;
    }
    const protocol = req.headers[GRAVITEE_PROTOCOL_HEADER];
    const v1 = protocol === 'v1';
    if (!v1) {
      this.violations.push({
        kind: 'missing-protocol-header',
        detail: `X-Gravitee-Exchange-Protocol ${protocol === undefined ? 'absent' : JSON.stringify(protocol)}: the channel speaks the legacy protocol`,
      });
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.channels.add(new Channel(this, ws, socket, req, v1));
    });
  }

  sessionAccepted(channel: Channel): void {
    this.sessions.push(channel);
  }

  hasPrimary(targetId: string, except: Channel): boolean {
    return [...this.channels].some((c) => c !== except && c.targetId === targetId && c.active && c.primary);
  }

  /** PrimaryChannelManager: when the primary goes, another active channel of the target is elected. */
  channelGone(channel: Channel, wasPrimary: boolean): void {
    if (!channel.open) this.channels.delete(channel);
    channel.primary = false;
    if (!wasPrimary || !channel.targetId || this.hasPrimary(channel.targetId, channel)) return;
    const next = [...this.channels].find(
      (c) => c !== channel && c.targetId === channel.targetId && c.active && c.open,
    );
    if (next) void next.electPrimary(true);
  }

  nextSession(timeoutMs = DEFAULT_WAIT_MS): Promise<AgentSession> {
    return this.sessions.next('session', () => true, timeoutMs, 'accepted HELLO');
  }

  status(targetId: string): 'CONNECTED' | 'DISCONNECTED' {
    return [...this.channels].some((c) => c.targetId === targetId && c.active && c.open)
      ? 'CONNECTED'
      : 'DISCONNECTED';
  }

  async stop(): Promise<void> {
    const closing = [...this.channels].map((c) => {
      c.drop();
      return c.closed;
    });
    await Promise.all(closing);
    this.wss.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Starts the stand-in on 127.0.0.1 (`options.port`, default a free one). */
export const startGraviteeController: StartGraviteeController = async (options) => {
  const extra = options as GraviteeStandInOptions;
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const upgradePath = `${extra.endpointPath ?? GRAVITEE_ENDPOINT_PATH}${GRAVITEE_EXCHANGE_PATH}`;
  return new StandIn(server, extra, upgradePath);
};
