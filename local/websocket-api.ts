/**
 * A local emulator of an Amazon API Gateway WebSocket API whose routes are Lambda proxy integrations,
 * faithful enough that the Lambda handlers behind it cannot tell the difference. It knows nothing about
 * what the handlers do: it takes them as functions.
 *
 * What it reproduces (API Gateway developer guide, "WebSocket APIs"):
 * - Upgrade: the `$connect` REQUEST authorizer is called with the API Gateway-shaped event (`methodArn`
 *   `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/$connect`); an Allow policy lets the client
 *   through and its `context` (plus `principalId`) becomes `requestContext.authorizer` on every later event
 *   of the connection; a Deny policy answers 403, a thrown `Unauthorized` (or a missing identity source)
 *   401, anything else 500 — no connection, no `$connect` invocation. Then `$connect` runs; a throw or a
 *   non-2xx `statusCode` refuses the upgrade. Until `$connect` has returned, the connection does not exist
 *   for `@connections` (410 Gone), as on AWS.
 * - Frames and messages: a client frame over `maxFrameBytes` (32 KB), or a message over `maxMessageBytes`
 *   (128 KB, which a client sends as several frames), closes the connection with 1009 "Message too big";
 *   otherwise the route is selected with the route selection expression (`$request.body.action`), falling
 *   back to `$default` for bad JSON or an unknown key; the handler gets the MESSAGE event and a `body` it
 *   returns is sent back (route response). A handler that throws makes API Gateway send
 *   `{"message": "Internal server error", "connectionId", "requestId"}`; no route and no `$default` sends
 *   `{"message": "Forbidden", ...}`; one that outlives the 29 s integration timeout sends
 *   `{"message": "Endpoint request timed out", ...}`. Handlers run concurrently, like Lambda. A binary
 *   frame goes to `$default` with a base64 `body` and `isBase64Encoded: true`.
 * - Idle: a connection nothing was sent on, in either direction, for `idleTimeoutMs` (API Gateway:
 *   10 minutes) is closed with 1001 "Going away".
 * - Close: `$disconnect` runs with `disconnectStatusCode`/`disconnectReason`, and the connection is gone.
 * - The `@connections` management API on the same port, at `/{stage}/@connections/{connectionId}`:
 *   POST (send; 410 `GoneException` for unknown or closed ids, 413 `PayloadTooLargeException` over 128 KB),
 *   GET (`connectedAt`, `identity`, `lastActiveAt`), DELETE (close). The real
 *   `@aws-sdk/client-apigatewaymanagementapi` works against `connectionsUrl`.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { createLambdaContext, type LocalLambdaHandler } from './lambda-endpoint.js';
import { listen } from './ports.js';
import { FrameSizeGuard, MAX_CLIENT_FRAME_BYTES } from './websocket-frames.js';

/** A route (or authorizer) target: a Lambda handler, optionally with the function name its context reports. */
export type RouteTarget =
  | LocalLambdaHandler
  | { readonly functionName: string; readonly handler: LocalLambdaHandler };

/** The IAM policy an authorizer returns (the parts API Gateway evaluates). */
interface PolicyStatement {
  Effect?: string;
  Action?: string | string[];
  Resource?: string | string[];
}

export interface WebSocketApiOptions {
  readonly port: number;
  readonly host?: string;
  /** Stage name; the WebSocket URL and the `@connections` base both end with it. Default `local`. */
  readonly stage?: string;
  /** API id used in `methodArn` and `requestContext.apiId`. Default: a random 10-character id. */
  readonly apiId?: string;
  readonly region?: string;
  readonly accountId?: string;
  /** The `$connect` REQUEST authorizer. Without one, every upgrade reaches `$connect`. */
  readonly authorizer?: RouteTarget;
  /**
   * Identity sources of the authorizer, e.g. `['route.request.header.Authorization']`: when one is missing
   * or empty, API Gateway answers 401 without calling the authorizer. Default: none (always call it).
   */
  readonly identitySource?: readonly string[];
  /** Route key → handler; `$connect`, `$disconnect` and `$default` are the special routes. */
  readonly routes: Readonly<Record<string, RouteTarget>>;
  /** Only `$request.body.<path>` expressions are supported. Default `$request.body.action`. */
  readonly routeSelectionExpression?: string;
  /** Largest message a client may send, in bytes. Default 128 KB (API Gateway's quota). */
  readonly maxMessageBytes?: number;
  /** Largest frame payload a client may send, in bytes. Default 32 KB (API Gateway's quota). */
  readonly maxFrameBytes?: number;
  /**
   * API Gateway's integration timeout for message routes: past it the client gets
   * `{"message": "Endpoint request timed out", ...}` while the handler keeps running. Default 29 s.
   */
  readonly integrationTimeoutMs?: number;
  /** Close a connection that has been idle this long. Default 10 minutes (API Gateway's quota). */
  readonly idleTimeoutMs?: number;
  /** Named in the error when the port is taken, e.g. `'--relay-port / FED_RELAY_PORT'`. */
  readonly portHint?: string;
  /** Where handler failures are reported (API Gateway would log them); default `console.error`. */
  readonly onHandlerError?: (routeKey: string, error: unknown, connectionId: string) => void;
}

/** What the emulator knows about one live connection. */
export interface WebSocketConnectionInfo {
  readonly connectionId: string;
  readonly connectedAt: Date;
  readonly lastActiveAt: Date;
  readonly sourceIp: string;
  readonly userAgent?: string;
  /** `requestContext.authorizer` of the connection's events (undefined without an authorizer). */
  readonly authorizer?: Readonly<Record<string, unknown>>;
}

export interface WebSocketApi {
  /** `ws://host:port/{stage}` — what a client connects to (`ws://host:port/` is accepted too). */
  readonly url: string;
  /** `http://host:port/{stage}` — the `endpoint` for `ApiGatewayManagementApiClient`. */
  readonly connectionsUrl: string;
  readonly port: number;
  readonly apiId: string;
  readonly stage: string;
  /** The open connections (those whose `$connect` has returned and that have not closed). */
  connections(): WebSocketConnectionInfo[];
  /** Resolves when no handler invocation is in flight. */
  idle(): Promise<void>;
  /** Closes every connection (1001, `$disconnect` runs and is awaited) and the server. */
  close(): Promise<void>;
}

const DEFAULT_MAX_MESSAGE_BYTES = 128 * 1024;
/** API Gateway closes a connection idle for 10 minutes. */
export const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60_000;
/** PostToConnection accepts at most 128 KB. */
const MAX_POST_BYTES = 128 * 1024;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const CONNECTIONS_PATH = /^\/([^/]+)\/@connections\/([^/]+)\/?$/;

/** API Gateway-style opaque id: 11 random bytes in base64, e.g. `WyHPAfymhcwCENw=`. */
function awsId(): string {
  return randomBytes(11).toString('base64').replaceAll('+', 'A').replaceAll('/', 'B');
}

/** `19/Mar/2019:09:39:18 +0000`, the `requestTime` format. */
function requestTime(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${pad(date.getUTCDate())}/${MONTHS[date.getUTCMonth()]}/${date.getUTCFullYear()}:` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`
  );
}

function headerMaps(request: IncomingMessage): {
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
} {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  const raw = request.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    headers[name] = value;
    multiValueHeaders[name] = [...(multiValueHeaders[name] ?? []), value];
  }
  return { headers, multiValueHeaders };
}

function queryMaps(url: URL): {
  queryStringParameters: Record<string, string>;
  multiValueQueryStringParameters: Record<string, string[]>;
} {
  const queryStringParameters: Record<string, string> = {};
  const multiValueQueryStringParameters: Record<string, string[]> = {};
  for (const [name, value] of url.searchParams) {
    queryStringParameters[name] = value;
    multiValueQueryStringParameters[name] = [...(multiValueQueryStringParameters[name] ?? []), value];
  }
  return { queryStringParameters, multiValueQueryStringParameters };
}

/** Glob match of an IAM resource/action pattern (`*` any run, `?` one character). */
function iamMatch(pattern: string, value: string): boolean {
  const regex = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${regex}$`).test(value);
}

/** API Gateway's evaluation of an authorizer policy for `methodArn`: an explicit Deny wins, then Allow. */
export function policyAllows(policyDocument: unknown, methodArn: string): boolean {
  if (typeof policyDocument !== 'object' || policyDocument === null) return false;
  const raw = (policyDocument as { Statement?: unknown }).Statement;
  const statements = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]) as PolicyStatement[];
  const applies = (statement: PolicyStatement): boolean => {
    const actions = [statement.Action ?? []].flat();
    const resources = [statement.Resource ?? []].flat();
    return (
      actions.some((action) => iamMatch(action.toLowerCase(), 'execute-api:invoke')) &&
      resources.some((resource) => iamMatch(resource, methodArn))
    );
  };
  const matching = statements.filter(
    (statement) => typeof statement === 'object' && statement && applies(statement),
  );
  if (matching.some((statement) => statement.Effect === 'Deny')) return false;
  return matching.some((statement) => statement.Effect === 'Allow');
}

/** Evaluates `$request.body.<path>` against a message body; undefined when it does not select anything. */
export function selectRouteKey(expression: string, body: string): string | undefined {
  const prefix = '$request.body.';
  if (!expression.startsWith(prefix)) {
    throw new Error(
      `Unsupported route selection expression '${expression}': expected '$request.body.<path>'`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  for (const key of expression.slice(prefix.length).split('.')) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

class HttpRefusal extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

type ConnectionState = 'connecting' | 'open' | 'closing' | 'closed';

interface Connection {
  readonly connectionId: string;
  readonly connectedAt: number;
  lastActiveAt: number;
  readonly sourceIp: string;
  readonly userAgent: string | undefined;
  readonly host: string;
  readonly authorizer: Record<string, unknown> | undefined;
  state: ConnectionState;
  socket?: WebSocket;
  idleTimer?: NodeJS.Timeout;
}

/**
 * Starts the WebSocket API emulator (WebSocket upgrades and the `@connections` API on one port).
 * Rejects with `PortInUseError` when the port is taken.
 */
export async function startWebSocketApi(options: WebSocketApiOptions): Promise<WebSocketApi> {
  const host = options.host ?? '127.0.0.1';
  const stage = options.stage ?? 'local';
  const apiId =
    options.apiId ??
    awsId()
      .slice(0, 10)
      .toLowerCase()
      .replace(/[^a-z0-9]/g, 'x');
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '123456789012';
  const expression = options.routeSelectionExpression ?? '$request.body.action';
  selectRouteKey(expression, '{}'); // validates the expression up front
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const maxFrameBytes = options.maxFrameBytes ?? MAX_CLIENT_FRAME_BYTES;
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const integrationTimeoutMs = options.integrationTimeoutMs ?? 29_000;
  const onHandlerError =
    options.onHandlerError ??
    ((routeKey: string, error: unknown, connectionId: string) => {
      console.error(`[websocket ${routeKey}] handler failed for connection ${connectionId}:`, error);
    });
  const connections = new Map<string, Connection>();
  const inFlight = new Set<Promise<unknown>>();
  let domainName = `${host}:${options.port}`;

  const invoke = (target: RouteTarget, routeKey: string, event: unknown): Promise<unknown> => {
    const handler = typeof target === 'function' ? target : target.handler;
    const functionName =
      typeof target === 'function'
        ? `${apiId}-${routeKey.replace(/[^a-zA-Z0-9-_]/g, '') || 'route'}`
        : target.functionName;
    const context = createLambdaContext({ functionName, region, accountId });
    const run = Promise.resolve().then(() => handler(event, context));
    const tracked = run.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
    tracked.catch(() => undefined);
    return run;
  };

  const baseContext = (connection: Connection, routeKey: string, eventType: string) => {
    const now = new Date();
    const requestId = awsId();
    return {
      routeKey,
      eventType,
      extendedRequestId: requestId,
      requestTime: requestTime(now),
      messageDirection: 'IN',
      stage,
      connectedAt: connection.connectedAt,
      requestTimeEpoch: now.getTime(),
      identity: {
        sourceIp: connection.sourceIp,
        ...(connection.userAgent === undefined ? {} : { userAgent: connection.userAgent }),
      },
      requestId,
      domainName,
      connectionId: connection.connectionId,
      apiId,
      ...(connection.authorizer === undefined ? {} : { authorizer: connection.authorizer }),
    };
  };

  const armIdleTimer = (connection: Connection): void => {
    clearTimeout(connection.idleTimer);
    connection.idleTimer = setTimeout(() => {
      if (connection.state === 'open') {
        connection.state = 'closing';
        connection.socket?.close(1001, 'Going away');
      }
    }, idleTimeoutMs);
    connection.idleTimer.unref();
  };

  const send = (connection: Connection, data: Buffer | string): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const socket = connection.socket;
      if (!socket || socket.readyState !== WebSocket.OPEN) {
        reject(new Error('connection is not open'));
        return;
      }
      let text: string | undefined;
      if (typeof data === 'string') text = data;
      else {
        try {
          text = new TextDecoder('utf-8', { fatal: true }).decode(data);
        } catch {
          text = undefined;
        }
      }
      const callback = (error?: Error) => (error ? reject(error) : resolve());
      if (text === undefined) socket.send(data, { binary: true }, callback);
      else socket.send(text, { binary: false }, callback);
    });

  const disconnect = async (connection: Connection, code: number, reason: string): Promise<void> => {
    if (connection.state === 'closed') return;
    connection.state = 'closed';
    clearTimeout(connection.idleTimer);
    connections.delete(connection.connectionId);
    const target = options.routes.$disconnect;
    if (!target) return;
    const event = {
      headers: { Host: connection.host, 'X-Forwarded-For': connection.sourceIp },
      multiValueHeaders: { Host: [connection.host], 'X-Forwarded-For': [connection.sourceIp] },
      requestContext: {
        ...baseContext(connection, '$disconnect', 'DISCONNECT'),
        disconnectStatusCode: code,
        disconnectReason: reason,
      },
      isBase64Encoded: false,
    };
    try {
      await invoke(target, '$disconnect', event);
    } catch (error) {
      onHandlerError('$disconnect', error, connection.connectionId);
    }
  };

  const tooBig = (connection: Connection): void => {
    connection.state = 'closing';
    connection.socket?.close(1009, 'Message too big');
  };

  const onMessage = async (connection: Connection, data: Buffer, isBinary: boolean): Promise<void> => {
    if (connection.state !== 'open') return;
    if (data.length > maxMessageBytes) {
      tooBig(connection);
      return;
    }
    connection.lastActiveAt = Date.now();
    armIdleTimer(connection);
    const body = isBinary ? data.toString('base64') : data.toString('utf8');
    const selected = isBinary ? undefined : selectRouteKey(expression, body);
    const routeKey =
      selected !== undefined && !selected.startsWith('$') && Object.hasOwn(options.routes, selected)
        ? selected
        : '$default';
    const requestContext = { ...baseContext(connection, routeKey, 'MESSAGE'), messageId: awsId() };
    const target = Object.hasOwn(options.routes, routeKey) ? options.routes[routeKey] : undefined;
    const errorReply = (message: string) =>
      JSON.stringify({ message, connectionId: connection.connectionId, requestId: requestContext.requestId });
    if (!target) {
      await send(connection, errorReply('Forbidden')).catch(() => undefined);
      return;
    }
    const event = { requestContext, body, isBase64Encoded: isBinary };
    let result: unknown;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = Symbol('timed out');
    try {
      result = await Promise.race([
        invoke(target, routeKey, event),
        new Promise<typeof timedOut>((resolve) => {
          timer = setTimeout(() => resolve(timedOut), integrationTimeoutMs);
        }),
      ]);
    } catch (error) {
      onHandlerError(routeKey, error, connection.connectionId);
      await send(connection, errorReply('Internal server error')).catch(() => undefined);
      return;
    } finally {
      clearTimeout(timer);
    }
    if (result === timedOut) {
      await send(connection, errorReply('Endpoint request timed out')).catch(() => undefined);
      return;
    }
    if (typeof result === 'object' && result !== null && 'body' in result) {
      const responseBody = (result as { body?: unknown }).body;
      if (responseBody === undefined || responseBody === null) return;
      const text = typeof responseBody === 'string' ? responseBody : JSON.stringify(responseBody);
      await send(connection, text).catch(() => undefined);
    }
  };

  const authorize = async (
    request: IncomingMessage,
    url: URL,
    connection: Omit<Connection, 'authorizer' | 'state'>,
  ): Promise<Record<string, unknown> | undefined> => {
    const target = options.authorizer;
    if (!target) return undefined;
    const { headers, multiValueHeaders } = headerMaps(request);
    const { queryStringParameters, multiValueQueryStringParameters } = queryMaps(url);
    for (const source of options.identitySource ?? []) {
      const header = /^route\.request\.header\.(.+)$/i.exec(source)?.[1];
      const query = /^route\.request\.querystring\.(.+)$/i.exec(source)?.[1];
      const value = header
        ? request.headers[header.toLowerCase()]
        : query
          ? url.searchParams.get(query)
          : 'unchecked';
      if (value === undefined || value === null || value === '') {
        throw new HttpRefusal(401, 'Unauthorized', 'Unauthorized');
      }
    }
    const methodArn = `arn:aws:execute-api:${region}:${accountId}:${apiId}/${stage}/$connect`;
    const base = baseContext(
      { ...connection, authorizer: undefined, state: 'connecting' },
      '$connect',
      'CONNECT',
    );
    const event = {
      type: 'REQUEST',
      methodArn,
      headers,
      multiValueHeaders,
      queryStringParameters,
      multiValueQueryStringParameters,
      stageVariables: {},
      requestContext: base,
    };
    const started = Date.now();
    let result: unknown;
    try {
      result = await invoke(target, '$connect-authorizer', event);
    } catch (error) {
      if (error instanceof Error && error.message === 'Unauthorized') {
        throw new HttpRefusal(401, 'Unauthorized', 'Unauthorized');
      }
      onHandlerError('$connect authorizer', error, connection.connectionId);
      throw new HttpRefusal(500, 'Internal Server Error', 'Internal server error');
    }
    if (typeof result !== 'object' || result === null || !('policyDocument' in result)) {
      onHandlerError(
        '$connect authorizer',
        new Error('authorizer returned no policyDocument'),
        connection.connectionId,
      );
      throw new HttpRefusal(500, 'Internal Server Error', 'Internal server error');
    }
    const { policyDocument, principalId, context } = result as {
      policyDocument: unknown;
      principalId?: unknown;
      context?: Record<string, unknown> | null;
    };
    if (!policyAllows(policyDocument, methodArn)) throw new HttpRefusal(403, 'Forbidden', 'Forbidden');
    const authorizer: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(context ?? {})) {
      if (value !== null && typeof value === 'object') {
        // API Gateway refuses non-primitive context values (AuthorizerConfigurationException → 500).
        onHandlerError(
          '$connect authorizer',
          new Error(`authorizer context value '${key}' is not a string, number or boolean`),
          connection.connectionId,
        );
        throw new HttpRefusal(500, 'Internal Server Error', 'Internal server error');
      }
      authorizer[key] = value === null || value === undefined ? value : String(value);
    }
    authorizer.principalId = principalId;
    authorizer.integrationLatency = Date.now() - started;
    return authorizer;
  };

  const wss = new WebSocketServer({ noServer: true, maxPayload: Math.max(maxMessageBytes * 4, 1024 * 1024) });

  const refuse = (socket: Duplex, status: number, reason: string, message: string): void => {
    const body = JSON.stringify({ message });
    if (!socket.destroyed) {
      socket.end(
        `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `x-amzn-ErrorType: ${status === 401 ? 'UnauthorizedException' : status === 403 ? 'ForbiddenException' : 'InternalServerErrorException'}\r\n` +
          `Connection: close\r\n\r\n${body}`,
      );
    }
  };

  const onUpgrade = async (request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname !== '/' && url.pathname !== `/${stage}` && url.pathname !== `/${stage}/`) {
      refuse(socket, 403, 'Forbidden', 'Forbidden');
      return;
    }
    if (
      String(request.headers.upgrade).toLowerCase() !== 'websocket' ||
      !request.headers['sec-websocket-key']
    ) {
      refuse(socket, 400, 'Bad Request', 'Bad Request');
      return;
    }
    const forwarded = request.headers['x-forwarded-for'];
    const draft = {
      connectionId: awsId(),
      connectedAt: Date.now(),
      lastActiveAt: Date.now(),
      sourceIp:
        (typeof forwarded === 'string' ? forwarded.split(',')[0]?.trim() : undefined) ??
        request.socket.remoteAddress ??
        '127.0.0.1',
      userAgent: request.headers['user-agent'],
      host: request.headers.host ?? domainName,
    };
    let authorizer: Record<string, unknown> | undefined;
    try {
      authorizer = await authorize(request, url, draft);
    } catch (error) {
      if (error instanceof HttpRefusal) refuse(socket, error.status, error.reason, error.message);
      else refuse(socket, 500, 'Internal Server Error', 'Internal server error');
      return;
    }
    const connection: Connection = { ...draft, authorizer, state: 'connecting' };
    connections.set(connection.connectionId, connection);
    const connectTarget = options.routes.$connect;
    if (connectTarget) {
      const { headers, multiValueHeaders } = headerMaps(request);
      const { queryStringParameters, multiValueQueryStringParameters } = queryMaps(url);
      const hasQuery = Object.keys(queryStringParameters).length > 0;
      const event = {
        headers,
        multiValueHeaders,
        ...(hasQuery ? { queryStringParameters, multiValueQueryStringParameters } : {}),
        requestContext: baseContext(connection, '$connect', 'CONNECT'),
        isBase64Encoded: false,
      };
      let refusal: { status: number; reason: string } | undefined;
      try {
        const result = await invoke(connectTarget, '$connect', event);
        const statusCode =
          typeof result === 'object' && result !== null
            ? (result as { statusCode?: unknown }).statusCode
            : undefined;
        if (typeof statusCode === 'number' && (statusCode < 200 || statusCode > 299)) {
          refusal = { status: statusCode, reason: 'Refused' };
        }
      } catch (error) {
        onHandlerError('$connect', error, connection.connectionId);
        refusal = { status: 502, reason: 'Bad Gateway' };
      }
      if (refusal) {
        connection.state = 'closed';
        connections.delete(connection.connectionId);
        refuse(
          socket,
          refusal.status,
          refusal.reason,
          refusal.status === 502 ? 'Internal server error' : 'Forbidden',
        );
        return;
      }
    }
    if (socket.destroyed) {
      // The client went away while $connect ran: API Gateway still reports the disconnect.
      await disconnect(connection, 1006, 'Connection closed abnormally');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      connection.socket = ws;
      connection.state = 'open';
      armIdleTimer(connection);
      // Ahead of ws's own listener: a frame over the limit closes the connection before it is delivered.
      const frames = new FrameSizeGuard(maxFrameBytes);
      socket.prependListener('data', (chunk: Buffer) => {
        if (connection.state === 'open' && frames.push(chunk) !== undefined) tooBig(connection);
      });
      ws.on('message', (data: RawData, isBinary: boolean) => {
        const buffer = Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.isBuffer(data)
            ? data
            : Buffer.from(data as ArrayBuffer);
        onMessage(connection, buffer, isBinary).catch((error: unknown) =>
          onHandlerError('message', error, connection.connectionId),
        );
      });
      ws.on('close', (code: number, reason: Buffer) => {
        const text =
          reason.toString('utf8') ||
          (code === 1005
            ? 'Client-side close frame status not set'
            : code === 1006
              ? 'Connection closed abnormally'
              : '');
        void disconnect(connection, code, text);
      });
      ws.on('error', () => undefined); // 'close' follows and runs $disconnect
    });
  };

  const sendJson = (response: ServerResponse, status: number, body: unknown, errorType?: string): void => {
    const text = body === undefined ? '' : JSON.stringify(body);
    response.writeHead(status, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(text),
      'x-amzn-RequestId': awsId(),
      ...(errorType ? { 'x-amzn-ErrorType': errorType } : {}),
    });
    response.end(text);
  };

  const readBody = (request: IncomingMessage, limit: number): Promise<Buffer | 'too-large'> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      request.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= limit) chunks.push(chunk);
      });
      request.on('end', () => resolve(size > limit ? 'too-large' : Buffer.concat(chunks)));
      request.on('error', reject);
    });

  const onHttp = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const match = CONNECTIONS_PATH.exec(url.pathname);
    if (!match) {
      if (url.pathname === '/' || url.pathname === `/${stage}` || url.pathname === `/${stage}/`) {
        sendJson(response, 426, { message: 'Upgrade Required: connect with a WebSocket client' });
      } else sendJson(response, 403, { message: 'Forbidden' }, 'ForbiddenException');
      return;
    }
    if (decodeURIComponent(match[1] ?? '') !== stage) {
      sendJson(response, 403, { message: 'Forbidden' }, 'ForbiddenException');
      return;
    }
    const connectionId = decodeURIComponent(match[2] ?? '');
    const connection = connections.get(connectionId);
    const live = connection?.state === 'open' ? connection : undefined;
    const gone = () => sendJson(response, 410, { message: null }, 'GoneException');
    switch (request.method) {
      case 'POST': {
        const body = await readBody(request, MAX_POST_BYTES);
        if (body === 'too-large') {
          sendJson(
            response,
            413,
            { message: `Message too long. Max size is ${MAX_POST_BYTES} bytes.` },
            'PayloadTooLargeException',
          );
          return;
        }
        if (!live) return gone();
        try {
          await send(live, body);
        } catch {
          return gone();
        }
        armIdleTimer(live);
        sendJson(response, 200, undefined);
        return;
      }
      case 'GET':
        if (!live) return gone();
        sendJson(response, 200, {
          connectedAt: new Date(live.connectedAt).toISOString(),
          identity: {
            sourceIp: live.sourceIp,
            ...(live.userAgent === undefined ? {} : { userAgent: live.userAgent }),
          },
          lastActiveAt: new Date(live.lastActiveAt).toISOString(),
        });
        return;
      case 'DELETE':
        if (!live) return gone();
        live.state = 'closing';
        live.socket?.close(1000, '');
        response.writeHead(204, { 'x-amzn-RequestId': awsId() });
        response.end();
        return;
      default:
        sendJson(response, 403, { message: 'Forbidden' }, 'ForbiddenException');
    }
  };

  const server = createServer((request, response) => {
    onHttp(request, response).catch((error: unknown) => {
      if (!response.headersSent)
        sendJson(response, 500, { message: String(error) }, 'InternalServerErrorException');
      else response.destroy();
    });
  });
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined);
    onUpgrade(request, socket, head).catch((error: unknown) => {
      onHandlerError('$connect', error, '(upgrade)');
      refuse(socket, 500, 'Internal Server Error', 'Internal server error');
    });
  });

  const port = await listen(server, options.port, host, 'WebSocket API emulator', options.portHint);
  const urlHost = host.includes(':') ? `[${host}]` : host;
  domainName = `${urlHost}:${port}`;

  return {
    url: `ws://${urlHost}:${port}/${stage}`,
    connectionsUrl: `http://${urlHost}:${port}/${stage}`,
    port,
    apiId,
    stage,
    connections() {
      return [...connections.values()]
        .filter((connection) => connection.state === 'open')
        .map((connection) => ({
          connectionId: connection.connectionId,
          connectedAt: new Date(connection.connectedAt),
          lastActiveAt: new Date(connection.lastActiveAt),
          sourceIp: connection.sourceIp,
          ...(connection.userAgent === undefined ? {} : { userAgent: connection.userAgent }),
          ...(connection.authorizer === undefined ? {} : { authorizer: connection.authorizer }),
        }));
    },
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    async close() {
      const closing = [...connections.values()].map((connection) => {
        connection.socket?.terminate();
        return disconnect(connection, 1001, 'Going away');
      });
      await Promise.allSettled(closing);
      await new Promise<void>((resolve, reject) => {
        wss.close();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}
