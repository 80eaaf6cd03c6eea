/**
 * Gravitee's exchange protocol, version 1, as `gravitee-io/gravitee-exchange` defines it
 * (`V1ProtocolAdapter`, `Command`, `Reply`, `AbstractWebSocketChannel`):
 *
 * - one exchange is one **binary** WebSocket message `t:<COMMAND|REPLY>;;et:<type>;;e:<json>`
 *   (the payload is always the last field, so a `;;` inside the JSON is part of the JSON);
 * - a command is `{id, type, payload}`, a reply `{commandId, type, commandStatus, errorDetails?, payload}`;
 * - Vert.x on the controller caps a frame at 65,536 bytes and a message at 13,107,200 bytes
 *   (`WebSocketControllerServerConfiguration`), so larger messages travel as continuation frames.
 *
 * Pure functions only: the socket side is `connector.ts`.
 */

/** `X-Gravitee-Exchange-Protocol` header value and the path the connector appends to an endpoint. */
export const PROTOCOL_HEADER = 'X-Gravitee-Exchange-Protocol';
export const PROTOCOL_VERSION = 'v1';
export const CONTROLLER_PATH = '/exchange/controller';

/** The controller's defaults (Vert.x `maxWebSocketFrameSize` / `maxWebSocketMessageSize`). */
export const MAX_FRAME_BYTES = 65_536;
export const MAX_MESSAGE_BYTES = 13_107_200;
/**
 * Payload bytes per frame the bridge sends: under the frame limit with room for the largest frame
 * header (14 bytes), whichever way a controller counts.
 */
export const FRAGMENT_BYTES = MAX_FRAME_BYTES - 1024;
/** `Command.COMMAND_REPLY_TIMEOUT_MS`: how long either side waits for a reply. */
export const REPLY_TIMEOUT_MS = 60_000;
/** `AbstractWebSocketChannel.PING_DELAY`. */
export const PING_INTERVAL_MS = 5_000;

export const CommandStatus = { SUCCEEDED: 'SUCCEEDED', ERROR: 'ERROR' } as const;
export type CommandStatus = (typeof CommandStatus)[keyof typeof CommandStatus];

/** Exchange types the bridge sends or handles (gravitee-exchange and gravitee-integration-api). */
export const ExchangeType = {
  HELLO: 'HELLO',
  PRIMARY: 'PRIMARY',
  HEALTH_CHECK: 'HEALTH_CHECK',
  GOOD_BYE: 'GOOD_BYE',
  DISCOVER: 'DISCOVER',
  START_INGEST: 'START_INGEST',
  INGEST: 'INGEST',
  SUBSCRIBE: 'SUBSCRIBE',
  UNSUBSCRIBE: 'UNSUBSCRIBE',
  /** `NoReply`: what a Java channel answers to a command type it has no handler for. */
  NO_REPLY: 'NO_REPLY',
} as const;

export interface ExchangeCommand {
  readonly id: string;
  readonly type: string;
  readonly payload: Record<string, unknown>;
}

export interface ExchangeReply {
  readonly commandId: string;
  readonly type: string;
  readonly commandStatus: CommandStatus | string;
  readonly errorDetails?: string;
  readonly payload?: Record<string, unknown>;
}

export type Exchange =
  | { kind: 'COMMAND'; command: ExchangeCommand }
  | { kind: 'REPLY'; reply: ExchangeReply };

/** Why an incoming message is not an exchange the bridge can act on. */
export class ExchangeDecodeError extends Error {
  override readonly name = 'ExchangeDecodeError';
  constructor(
    message: string,
    /** The command id, when the JSON was readable enough to have one (so a reply can still be sent). */
    readonly commandId?: string,
    readonly exchangeType?: string,
  ) {
    super(message);
  }
}

const SEPARATOR = ';;';

/** Serialises a command: `t:COMMAND;;et:<type>;;e:{"id","type","payload"}`. */
export function encodeCommand(command: ExchangeCommand): Buffer {
  const json = JSON.stringify({ id: command.id, type: command.type, payload: command.payload });
  return Buffer.from(`t:COMMAND${SEPARATOR}et:${command.type}${SEPARATOR}e:${json}`, 'utf8');
}

/** Serialises a reply: `t:REPLY;;et:<type>;;e:{"commandId","type","commandStatus","errorDetails"?,"payload"}`. */
export function encodeReply(reply: ExchangeReply): Buffer {
  // Field order as Reply's @JsonPropertyOrder; absent fields left out (JsonInclude NON_NULL).
  const body: Record<string, unknown> = {
    commandId: reply.commandId,
    type: reply.type,
    commandStatus: reply.commandStatus,
  };
  if (reply.errorDetails !== undefined) body.errorDetails = reply.errorDetails;
  if (reply.payload !== undefined) body.payload = reply.payload;
  return Buffer.from(`t:REPLY${SEPARATOR}et:${reply.type}${SEPARATOR}e:${JSON.stringify(body)}`, 'utf8');
}

/** A successful reply to `command`. */
export function succeeded(command: ExchangeCommand, payload: Record<string, unknown> = {}): ExchangeReply {
  return { commandId: command.id, type: command.type, commandStatus: CommandStatus.SUCCEEDED, payload };
}

/** An ERROR reply to `command` (type kept, so the controller's reply adapter for the type applies). */
export function failed(command: Pick<ExchangeCommand, 'id' | 'type'>, errorDetails: string): ExchangeReply {
  return { commandId: command.id, type: command.type, commandStatus: CommandStatus.ERROR, errorDetails };
}

/**
 * Parses one message as `V1ProtocolAdapter.read` does: fields split on `;;`, `t:` the exchange kind,
 * `et:` the type, `e:` the JSON (rejoined with what follows). Throws {@link ExchangeDecodeError}.
 */
export function decodeExchange(data: Buffer | string): Exchange {
  const text = typeof data === 'string' ? data : data.toString('utf8');
  const fields = text.split(SEPARATOR);
  let kind: string | undefined;
  let exchangeType: string | undefined;
  let json: string | undefined;
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    if (field.startsWith('t:')) kind = field.slice(2).trim();
    else if (field.startsWith('et:')) exchangeType = field.slice(3).trim();
    else if (field.startsWith('e:')) {
      json = fields.slice(i).join(SEPARATOR).slice(2).trim();
      break;
    }
  }
  if (kind !== 'COMMAND' && kind !== 'REPLY') {
    throw new ExchangeDecodeError(`Unknown exchange kind ${JSON.stringify(kind ?? null)}`);
  }
  if (json === undefined) throw new ExchangeDecodeError(`${kind} without an exchange (e:)`);
  let body: unknown;
  try {
    body = JSON.parse(json);
  } catch (error) {
    throw new ExchangeDecodeError(`${kind} exchange is not JSON: ${(error as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ExchangeDecodeError(`${kind} exchange is not a JSON object`);
  }
  const raw = body as Record<string, unknown>;
  const type = typeof raw.type === 'string' ? raw.type : exchangeType;
  const payload =
    typeof raw.payload === 'object' && raw.payload !== null && !Array.isArray(raw.payload)
      ? (raw.payload as Record<string, unknown>)
      : {};
  if (kind === 'COMMAND') {
    const id = typeof raw.id === 'string' && raw.id.length > 0 ? raw.id : undefined;
    if (!id) throw new ExchangeDecodeError('COMMAND without an id', undefined, type);
    if (!type) throw new ExchangeDecodeError('COMMAND without a type', id);
    return { kind, command: { id, type, payload } };
  }
  if (typeof raw.commandId !== 'string') throw new ExchangeDecodeError('REPLY without a commandId');
  return {
    kind,
    reply: {
      commandId: raw.commandId,
      type: type ?? 'UNKNOWN',
      commandStatus: typeof raw.commandStatus === 'string' ? raw.commandStatus : CommandStatus.ERROR,
      ...(typeof raw.errorDetails === 'string' ? { errorDetails: raw.errorDetails } : {}),
      payload,
    },
  };
}

/**
 * Cuts one message into the payloads of its WebSocket frames: one frame when it fits `fragmentBytes`,
 * else consecutive slices (the first sent as a binary frame with FIN clear, the rest as continuation
 * frames, FIN on the last).
 */
export function fragment(message: Buffer, fragmentBytes = FRAGMENT_BYTES): Buffer[] {
  if (!(fragmentBytes > 0)) throw new RangeError(`fragmentBytes must be positive, received ${fragmentBytes}`);
  if (message.length <= fragmentBytes) return [message];
  const frames: Buffer[] = [];
  for (let offset = 0; offset < message.length; offset += fragmentBytes) {
    frames.push(message.subarray(offset, offset + fragmentBytes));
  }
  return frames;
}

/** Bytes of the envelope around a payload JSON (for sizing batches under the message limit). */
export function envelopeBytes(kind: 'COMMAND' | 'REPLY', type: string): number {
  return Buffer.byteLength(
    kind === 'COMMAND'
      ? `t:COMMAND;;et:${type};;e:{"id":"00000000-0000-0000-0000-000000000000","type":"${type}","payload":}`
      : `t:REPLY;;et:${type};;e:{"commandId":"00000000-0000-0000-0000-000000000000","type":"${type}","commandStatus":"SUCCEEDED","payload":}`,
    'utf8',
  );
}
