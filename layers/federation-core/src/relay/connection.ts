/**
 * The relay's connection lifecycle, independent of Lambda (the relay-connection function adapts it):
 * - `$connect` (already authorized): records the connection, then asks for the `hello`. A connection
 *   cannot be posted to before `$connect` returns, so the function invokes itself asynchronously with
 *   `{ internal: 'hello', connectionId }` and that invocation posts the `hello` (retrying briefly on Gone).
 * - `$disconnect`: deletes the record.
 * Internal events are recognised by having no `requestContext`: everything API Gateway sends has one,
 * and client frames never reach this function (they go to relay-command).
 */
import type { ConnectionRepository } from '../ledger/connections.js';
import type { Logger } from '../logger.js';
import type { PostOutcome } from '../publishing/publisher.js';

/** What the function asks itself to do after `$connect`. */
export interface HelloRequest {
  readonly internal: 'hello';
  readonly connectionId: string;
}

/** The parts of an API Gateway WebSocket `$connect` / `$disconnect` event the relay reads. */
export interface ConnectionEvent {
  readonly requestContext: {
    readonly eventType?: string;
    readonly connectionId?: string;
    readonly identity?: { readonly sourceIp?: string; readonly userAgent?: string };
  };
}

/** The part of the Lambda context the hello is scheduled through (the function's own ARN). */
export interface InvocationContext {
  readonly invokedFunctionArn: string;
}

export interface RelayConnectionDeps {
  readonly connections: Pick<ConnectionRepository, 'put' | 'delete'>;
  /** Posts the `hello` to a connection. */
  readonly sendHello: (connectionId: string) => Promise<PostOutcome>;
  /** Schedules the `hello` after `$connect` returns (default: asynchronous self-invocation). */
  readonly scheduleHello: (request: HelloRequest, context: InvocationContext) => Promise<void>;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
}

/** True for the function's own `{ internal: 'hello', connectionId }` event (never an API Gateway event). */
export function isHelloRequest(event: unknown): event is HelloRequest {
  if (typeof event !== 'object' || event === null || 'requestContext' in event) return false;
  const e = event as Record<string, unknown>;
  return e.internal === 'hello' && typeof e.connectionId === 'string' && e.connectionId.length > 0;
}

/** Handles one event of the relay-connection function: its own hello, `$connect` or `$disconnect`. */
export async function handleConnectionEvent(
  deps: RelayConnectionDeps,
  event: ConnectionEvent | HelloRequest,
  context: InvocationContext,
): Promise<{ statusCode: number }> {
  if (isHelloRequest(event)) {
    const outcome = await deps.sendHello(event.connectionId);
    // Gone: the client left before its hello could be posted (short-lived CLI commands do).
    if (outcome === 'gone')
      deps.logger?.info('hello not delivered: connection gone', { connectionId: event.connectionId });
    else if (outcome === 'failed')
      deps.logger?.warn('hello not delivered', { connectionId: event.connectionId });
    return { statusCode: 200 };
  }
  const requestContext = (event as ConnectionEvent).requestContext;
  const connectionId = requestContext?.connectionId;
  if (!connectionId) return { statusCode: 400 };
  switch (requestContext.eventType) {
    case 'CONNECT': {
      await deps.connections.put({
        connectionId,
        ...(requestContext.identity?.sourceIp ? { sourceIp: requestContext.identity.sourceIp } : {}),
        ...(requestContext.identity?.userAgent ? { userAgent: requestContext.identity.userAgent } : {}),
      });
      try {
        await deps.scheduleHello({ internal: 'hello', connectionId }, context);
      } catch (error) {
        // The connection stays usable; the control plane learns the agent's identity from `ping`.
        deps.logger?.error('Cannot schedule hello', { connectionId, error });
      }
      deps.logger?.info('Connected', { connectionId });
      return { statusCode: 200 };
    }
    case 'DISCONNECT':
      await deps.connections.delete(connectionId);
      deps.logger?.info('Disconnected', { connectionId });
      return { statusCode: 200 };
    default:
      return { statusCode: 400 };
  }
}

/** The parts of an API Gateway WebSocket message event the relay reads. */
export interface MessageEvent {
  readonly requestContext?: { readonly eventType?: string; readonly connectionId?: string };
  readonly body?: unknown;
  readonly isBase64Encoded?: boolean;
}

/**
 * The frame of a relay-command event: the connection and the UTF-8 body, or undefined for an event
 * that is not a WebSocket message. A body that is not a string (never sent by API Gateway) is an
 * empty frame, which gets a FAILED reply.
 */
export function messageFrame(
  event: MessageEvent | undefined,
): { connectionId: string; body: string | undefined } | undefined {
  const requestContext = event?.requestContext;
  const connectionId = requestContext?.connectionId;
  if (typeof connectionId !== 'string' || !connectionId || requestContext?.eventType !== 'MESSAGE')
    return undefined;
  const raw = event?.body;
  const body =
    typeof raw !== 'string'
      ? undefined
      : event?.isBase64Encoded
        ? Buffer.from(raw, 'base64').toString('utf8')
        : raw;
  return { connectionId, body };
}
