import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  GoneException,
  PayloadTooLargeException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { PortInUseError } from '../../local/ports.js';
import {
  policyAllows,
  selectRouteKey,
  startWebSocketApi,
  type WebSocketApi,
} from '../../local/websocket-api.js';

// biome-ignore lint/suspicious/noExplicitAny: events are inspected field by field.
type AnyEvent = any;

interface Call {
  route: string;
  event: AnyEvent;
}

const calls: Call[] = [];
const handlerErrors: string[] = [];
const connectOutcomes: string[] = [];
let api: WebSocketApi;
let management: ApiGatewayManagementApiClient;
const sockets: WebSocket[] = [];

let gateActive = 0;
let gateMax = 0;
let releaseGate: () => void = () => undefined;
const gate = new Promise<void>((resolve) => {
  releaseGate = resolve;
});

const allow = (context: Record<string, unknown>) => ({
  principalId: 'control-plane',
  policyDocument: {
    Version: '2012-10-17',
    Statement: [
      { Action: 'execute-api:Invoke', Effect: 'Allow', Resource: 'arn:aws:execute-api:*:*:*/*/$connect' },
    ],
  },
  context,
});

const record = (route: string, event: AnyEvent) => calls.push({ route, event });
const callsFor = (route: string) => calls.filter((c) => c.route === route);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(probe: () => T | undefined, what: string, timeoutMs = 3_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Opens a WebSocket; resolves with the open socket or rejects with the HTTP status of a refused upgrade. */
function connect(
  url: string,
  headers: Record<string, string> = { Authorization: 'Bearer good' },
): Promise<{ ws: WebSocket; messages: string[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const messages: string[] = [];
    ws.on('message', (data) => messages.push(data.toString()));
    ws.once('open', () => {
      sockets.push(ws);
      resolve({ ws, messages });
    });
    ws.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      response.on('end', () =>
        reject(
          Object.assign(new Error(`refused ${response.statusCode}`), { status: response.statusCode, body }),
        ),
      );
    });
    ws.once('error', (error) => reject(error));
  });
}

/** Sends one text message as continuation frames of at most 32 KB, as API Gateway asks of clients. */
function sendInFrames(ws: WebSocket, text: string, frameBytes = 32 * 1024): void {
  const bytes = Buffer.from(text, 'utf8');
  for (let offset = 0; offset < bytes.length; offset += frameBytes) {
    const fin = offset + frameBytes >= bytes.length;
    ws.send(bytes.subarray(offset, offset + frameBytes), { binary: false, fin });
  }
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
}

beforeAll(async () => {
  api = await startWebSocketApi({
    port: 0,
    stage: 'test',
    apiId: 'abcdef1234',
    routeSelectionExpression: '$request.body.action',
    portHint: '--relay-port / FED_RELAY_PORT',
    onHandlerError: (routeKey, error) => handlerErrors.push(`${routeKey}: ${(error as Error).message}`),
    authorizer: async (event: AnyEvent) => {
      record('authorizer', event);
      const header = event.headers.Authorization;
      if (header === 'Bearer good') return allow({ tenant: 'cp-1', level: 3, admin: true });
      if (header === 'Bearer deny') {
        return {
          ...allow({}),
          policyDocument: {
            Version: '2012-10-17',
            Statement: [{ Action: 'execute-api:Invoke', Effect: 'Deny', Resource: event.methodArn }],
          },
        };
      }
      throw new Error('Unauthorized');
    },
    routes: {
      $connect: async (event: AnyEvent) => {
        record('$connect', event);
        const mode = event.queryStringParameters?.mode;
        if (mode === 'refuse') return { statusCode: 403 };
        if (mode === 'throw') throw new Error('connect failed');
        if (mode === 'post-during-connect') {
          // Like AWS: the connection does not exist for @connections until $connect has returned.
          const outcome = await management
            .send(
              new PostToConnectionCommand({ ConnectionId: event.requestContext.connectionId, Data: 'early' }),
            )
            .then(
              () => 'delivered',
              (error: Error) => error.name,
            );
          connectOutcomes.push(outcome);
          connectOutcomes.push(
            `listed:${api.connections().some((c) => c.connectionId === event.requestContext.connectionId)}`,
          );
        }
        return { statusCode: 200 };
      },
      $disconnect: async (event: AnyEvent) => {
        record('$disconnect', event);
        return { statusCode: 200 };
      },
      $default: async (event: AnyEvent) => {
        record('$default', event);
        return { statusCode: 200, body: `default:${event.body}` };
      },
      ping: async (event: AnyEvent) => {
        record('ping', event);
        return { statusCode: 200, body: JSON.stringify({ pong: event.requestContext.connectionId }) };
      },
      silent: async (event: AnyEvent) => {
        record('silent', event);
        return { statusCode: 200 };
      },
      boom: async () => {
        throw new Error('route exploded');
      },
      gated: async (event: AnyEvent) => {
        gateActive += 1;
        gateMax = Math.max(gateMax, gateActive);
        if (gateActive === 5) releaseGate();
        await gate;
        gateActive -= 1;
        return { statusCode: 200, body: `done:${JSON.parse(event.body).n}` };
      },
    },
  });
  management = new ApiGatewayManagementApiClient({
    endpoint: api.connectionsUrl,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 1,
  });
});

afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await api.idle();
});

afterAll(async () => {
  management?.destroy();
  await api?.close();
});

describe('WebSocket API emulator: $connect and the authorizer', () => {
  it('refuses an upgrade without a token with 401 and never invokes $connect', async () => {
    const before = callsFor('$connect').length;
    const error = await connect(api.url, {}).catch((e: unknown) => e as { status: number; body: string });
    expect((error as { status: number }).status).toBe(401);
    expect(JSON.parse((error as { body: string }).body)).toEqual({ message: 'Unauthorized' });
    expect(callsFor('$connect').length).toBe(before);
    expect(api.connections()).toEqual([]);
  });

  it('refuses an upgrade the authorizer denies with 403 and never invokes $connect', async () => {
    const before = callsFor('$connect').length;
    const error = await connect(api.url, { Authorization: 'Bearer deny' }).catch((e: unknown) => e);
    expect((error as { status: number }).status).toBe(403);
    expect(callsFor('$connect').length).toBe(before);
  });

  it('calls the authorizer with an API Gateway REQUEST authorizer event', async () => {
    await connect(`${api.url}?client=cp&client=cp2`, { Authorization: 'Bearer good', 'X-Custom': 'v' });
    const event = callsFor('authorizer').at(-1)!.event;
    expect(event.type).toBe('REQUEST');
    expect(event.methodArn).toBe('arn:aws:execute-api:us-east-1:123456789012:abcdef1234/test/$connect');
    expect(event.headers.Authorization).toBe('Bearer good');
    expect(event.headers['X-Custom']).toBe('v');
    expect(event.multiValueHeaders['X-Custom']).toEqual(['v']);
    expect(event.queryStringParameters).toEqual({ client: 'cp2' });
    expect(event.multiValueQueryStringParameters).toEqual({ client: ['cp', 'cp2'] });
    expect(event.stageVariables).toEqual({});
    expect(event.requestContext).toMatchObject({
      routeKey: '$connect',
      eventType: 'CONNECT',
      messageDirection: 'IN',
      stage: 'test',
      apiId: 'abcdef1234',
      domainName: `127.0.0.1:${api.port}`,
      identity: { sourceIp: '127.0.0.1' },
    });
    expect(event.requestContext.connectionId).toMatch(/^[A-Za-z0-9]{15}=$/);
    expect(event.requestContext.requestTime).toMatch(
      /^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/,
    );
    expect(typeof event.requestContext.connectedAt).toBe('number');
  });

  it('invokes $connect with a CONNECT event carrying the authorizer context of the same connection', async () => {
    await connect(api.url);
    const authorizerEvent = callsFor('authorizer').at(-1)!.event;
    const event = callsFor('$connect').at(-1)!.event;
    expect(event.requestContext.connectionId).toBe(authorizerEvent.requestContext.connectionId);
    expect(event.requestContext).toMatchObject({ routeKey: '$connect', eventType: 'CONNECT', stage: 'test' });
    expect(event.requestContext.authorizer).toMatchObject({
      principalId: 'control-plane',
      tenant: 'cp-1',
      level: '3',
      admin: 'true',
    });
    expect(event.headers.Authorization).toBe('Bearer good');
    expect(event.isBase64Encoded).toBe(false);
    expect(event.queryStringParameters).toBeUndefined();
    expect(api.connections().map((c) => c.connectionId)).toContain(event.requestContext.connectionId);
  });

  it('refuses the upgrade when $connect answers a non-2xx status or throws', async () => {
    const refused = await connect(`${api.url}?mode=refuse`).catch((e: unknown) => e);
    expect((refused as { status: number }).status).toBe(403);
    const thrown = await connect(`${api.url}?mode=throw`).catch((e: unknown) => e);
    expect((thrown as { status: number }).status).toBe(502);
    expect(handlerErrors).toContain('$connect: connect failed');
    expect(api.connections()).toEqual([]);
    // No $disconnect for a connection that never opened.
    const refusedIds = callsFor('$connect')
      .slice(-2)
      .map((c) => c.event.requestContext.connectionId);
    await sleep(100);
    expect(
      callsFor('$disconnect').filter((c) => refusedIds.includes(c.event.requestContext.connectionId)),
    ).toEqual([]);
  });

  it('answers GoneException to posts before $connect has returned, then delivers', async () => {
    connectOutcomes.length = 0;
    const { ws, messages } = await connect(`${api.url}?mode=post-during-connect`);
    expect(connectOutcomes).toEqual(['GoneException', 'listed:false']);
    const connectionId = callsFor('$connect').at(-1)!.event.requestContext.connectionId as string;
    await management.send(
      new PostToConnectionCommand({ ConnectionId: connectionId, Data: '{"type":"event"}' }),
    );
    await waitFor(() => messages.length > 0, 'the posted message');
    expect(messages).toEqual(['{"type":"event"}']);
    expect(messages).not.toContain('early');
    ws.close();
  });
});

describe('WebSocket API emulator: routes', () => {
  it('selects the route with $request.body.action and sends the route response back', async () => {
    const { ws, messages } = await connect(api.url);
    ws.send(JSON.stringify({ action: 'ping', id: 'c1' }));
    await waitFor(() => messages.length > 0, 'the route response');
    const event = callsFor('ping').at(-1)!.event;
    expect(JSON.parse(messages[0]!)).toEqual({ pong: event.requestContext.connectionId });
    expect(event.body).toBe('{"action":"ping","id":"c1"}');
    expect(event.isBase64Encoded).toBe(false);
    expect(event.requestContext).toMatchObject({
      routeKey: 'ping',
      eventType: 'MESSAGE',
      messageDirection: 'IN',
      apiId: 'abcdef1234',
      stage: 'test',
    });
    expect(event.requestContext.messageId).toMatch(/=$/);
    expect(event.requestContext.authorizer).toMatchObject({ principalId: 'control-plane', tenant: 'cp-1' });
    expect(event.headers).toBeUndefined();
  });

  it('routes bad JSON, an unknown action and a special route key to $default', async () => {
    const { ws, messages } = await connect(api.url);
    ws.send('{not json');
    ws.send(JSON.stringify({ action: 'teleport' }));
    ws.send(JSON.stringify({ action: '$disconnect' }));
    await waitFor(() => messages.length === 3, 'three $default responses');
    expect(messages.sort()).toEqual(
      ['default:{not json', 'default:{"action":"teleport"}', 'default:{"action":"$disconnect"}'].sort(),
    );
    expect(
      callsFor('$default')
        .slice(-3)
        .map((c) => c.event.requestContext.routeKey),
    ).toEqual(['$default', '$default', '$default']);
  });

  it('routes a binary frame to $default as a base64 body, on the stage URL and on the bare host URL', async () => {
    const bareUrl = api.url.replace(/\/test$/, '/');
    const { ws, messages } = await connect(bareUrl);
    ws.send(Buffer.from([0xff, 0x00, 0x01]));
    await waitFor(() => messages.length > 0, 'the $default response');
    const event = callsFor('$default').at(-1)!.event;
    expect(event.isBase64Encoded).toBe(true);
    expect(event.body).toBe(Buffer.from([0xff, 0x00, 0x01]).toString('base64'));
  });

  it('sends nothing back when the handler returns no body', async () => {
    const { ws, messages } = await connect(api.url);
    ws.send(JSON.stringify({ action: 'silent' }));
    await waitFor(() => callsFor('silent').length > 0, 'the silent route');
    ws.send(JSON.stringify({ action: 'ping' }));
    await waitFor(() => messages.length > 0, 'the ping response');
    expect(messages.length).toBe(1);
    expect(JSON.parse(messages[0]!)).toHaveProperty('pong');
  });

  it('answers Internal server error when a handler throws, and keeps serving', async () => {
    const { ws, messages } = await connect(api.url);
    ws.send(JSON.stringify({ action: 'boom' }));
    await waitFor(() => messages.length > 0, 'the error reply');
    const reply = JSON.parse(messages[0]!);
    expect(reply.message).toBe('Internal server error');
    expect(reply.connectionId).toMatch(/=$/);
    expect(typeof reply.requestId).toBe('string');
    expect(handlerErrors).toContain('boom: route exploded');
    ws.send(JSON.stringify({ action: 'ping' }));
    await waitFor(() => messages.length > 1, 'the next response');
    expect(JSON.parse(messages[1]!)).toHaveProperty('pong');
  });

  it('runs message handlers concurrently like Lambda', async () => {
    const { ws, messages } = await connect(api.url);
    for (const n of [1, 2, 3, 4, 5]) ws.send(JSON.stringify({ action: 'gated', n }));
    // The gate opens only when all five invocations are in flight at once.
    await waitFor(() => messages.length === 5, 'five concurrent responses', 5_000);
    expect(gateMax).toBe(5);
    expect(messages.sort()).toEqual(['done:1', 'done:2', 'done:3', 'done:4', 'done:5']);
  });

  it('accepts a message of exactly 128 KB in 32 KB frames and closes with 1009 on a bigger one', async () => {
    const { ws, messages } = await connect(api.url);
    const exact = JSON.stringify({ action: 'silent', pad: '' });
    sendInFrames(ws, JSON.stringify({ action: 'silent', pad: 'x'.repeat(128 * 1024 - exact.length) }));
    ws.send(JSON.stringify({ action: 'ping' }));
    await waitFor(() => messages.length > 0, 'the ping after the 128 KB message');
    expect(callsFor('silent').at(-1)!.event.body.length).toBe(128 * 1024);
    const connectionId = callsFor('ping').at(-1)!.event.requestContext.connectionId;
    const before = callsFor('silent').length;
    const closing = closed(ws);
    sendInFrames(ws, JSON.stringify({ action: 'silent', pad: 'x'.repeat(128 * 1024) }));
    expect(await closing).toEqual({ code: 1009, reason: 'Message too big' });
    const disconnect = await waitFor(
      () => callsFor('$disconnect').find((c) => c.event.requestContext.connectionId === connectionId),
      '$disconnect',
    );
    expect(disconnect.event.requestContext.disconnectStatusCode).toBe(1009);
    expect(callsFor('silent').length).toBe(before);
  });

  it('accepts a frame of exactly 32 KB and closes with 1009 on a bigger frame, invoking nothing', async () => {
    const { ws, messages } = await connect(api.url);
    const empty = JSON.stringify({ action: 'silent', pad: '' });
    ws.send(JSON.stringify({ action: 'silent', pad: 'y'.repeat(32 * 1024 - empty.length) }));
    ws.send(JSON.stringify({ action: 'ping' }));
    await waitFor(() => messages.length > 0, 'the ping after the 32 KB frame');
    expect(callsFor('silent').at(-1)!.event.body.length).toBe(32 * 1024);
    const before = callsFor('silent').length;
    const closing = closed(ws);
    // One byte over, in a single frame: a message API Gateway would take in two frames closes it.
    ws.send(JSON.stringify({ action: 'silent', pad: 'z'.repeat(32 * 1024 - empty.length + 1) }));
    expect(await closing).toEqual({ code: 1009, reason: 'Message too big' });
    await api.idle();
    expect(callsFor('silent').length).toBe(before);
  });
});

describe('WebSocket API emulator: @connections and $disconnect', () => {
  it('posts, reads and deletes a connection through the real ApiGatewayManagementApiClient', async () => {
    const { ws, messages } = await connect(api.url, {
      Authorization: 'Bearer good',
      'User-Agent': 'cp-client/1.0',
    });
    const connectionId = callsFor('$connect').at(-1)!.event.requestContext.connectionId as string;
    await management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: 'hello' }));
    await waitFor(() => messages.length > 0, 'the post');
    expect(messages).toEqual(['hello']);

    const info = await management.send(new GetConnectionCommand({ ConnectionId: connectionId }));
    expect(info.ConnectedAt).toBeInstanceOf(Date);
    expect(info.LastActiveAt).toBeInstanceOf(Date);
    expect(info.Identity).toEqual({ SourceIp: '127.0.0.1', UserAgent: 'cp-client/1.0' });

    const closing = closed(ws);
    await management.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
    expect((await closing).code).toBe(1000);
    const error = await management
      .send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: 'late' }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GoneException);
    await waitFor(
      () => callsFor('$disconnect').find((c) => c.event.requestContext.connectionId === connectionId),
      '$disconnect after DeleteConnection',
    );
  });

  it('answers GoneException for an unknown id and after the client closed', async () => {
    const unknown = await management
      .send(new PostToConnectionCommand({ ConnectionId: 'Zm9vYmFyYmF6cXV4=', Data: 'x' }))
      .catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(GoneException);
    expect((unknown as GoneException).$metadata.httpStatusCode).toBe(410);

    const { ws } = await connect(api.url);
    const connectionId = callsFor('$connect').at(-1)!.event.requestContext.connectionId as string;
    ws.close(1000, 'bye');
    const disconnect = await waitFor(
      () => callsFor('$disconnect').find((c) => c.event.requestContext.connectionId === connectionId),
      '$disconnect',
    );
    expect(disconnect.event.requestContext).toMatchObject({
      routeKey: '$disconnect',
      eventType: 'DISCONNECT',
      disconnectStatusCode: 1000,
      disconnectReason: 'bye',
      authorizer: { principalId: 'control-plane', tenant: 'cp-1' },
    });
    const gone = await management
      .send(new GetConnectionCommand({ ConnectionId: connectionId }))
      .catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(GoneException);
    expect(api.connections().map((c) => c.connectionId)).not.toContain(connectionId);
  });

  it('rejects a post over 128 KB with PayloadTooLargeException', async () => {
    await connect(api.url);
    const connectionId = callsFor('$connect').at(-1)!.event.requestContext.connectionId as string;
    const error = await management
      .send(
        new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.alloc(128 * 1024 + 1, 97) }),
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadTooLargeException);
    await management.send(
      new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.alloc(128 * 1024, 97) }),
    );
  });
});

describe('WebSocket API emulator: options and startup', () => {
  it('answers 401 without calling the authorizer when an identity source is missing', async () => {
    let authorizerCalls = 0;
    const strict = await startWebSocketApi({
      port: 0,
      identitySource: ['route.request.header.Authorization'],
      authorizer: async () => {
        authorizerCalls += 1;
        return allow({});
      },
      routes: {},
    });
    try {
      const error = await connect(strict.url, {}).catch((e: unknown) => e);
      expect((error as { status: number }).status).toBe(401);
      expect(authorizerCalls).toBe(0);
      await connect(strict.url, { Authorization: 'anything' });
      expect(authorizerCalls).toBe(1);
    } finally {
      for (const ws of sockets.splice(0)) ws.terminate();
      await strict.close();
    }
  });

  it('answers Forbidden to a message no route matches when there is no $default', async () => {
    const bare = await startWebSocketApi({ port: 0, routes: { only: async () => ({ statusCode: 200 }) } });
    try {
      const { ws, messages } = await connect(bare.url, {});
      ws.send(JSON.stringify({ action: 'other' }));
      await waitFor(() => messages.length > 0, 'the Forbidden reply');
      expect(JSON.parse(messages[0]!)).toMatchObject({ message: 'Forbidden' });
    } finally {
      for (const ws of sockets.splice(0)) ws.terminate();
      await bare.close();
    }
  });

  it('answers Endpoint request timed out when a route outlives the integration timeout', async () => {
    let finished = false;
    const slow = await startWebSocketApi({
      port: 0,
      integrationTimeoutMs: 100,
      routes: {
        $default: async () => {
          await sleep(300);
          finished = true;
          return { statusCode: 200, body: 'too late' };
        },
      },
    });
    try {
      const { ws, messages } = await connect(slow.url, {});
      ws.send('{}');
      await waitFor(() => messages.length > 0, 'the timeout reply');
      expect(JSON.parse(messages[0]!)).toMatchObject({ message: 'Endpoint request timed out' });
      expect(finished).toBe(false);
      await slow.idle();
      expect(finished).toBe(true);
      await sleep(20);
      expect(messages).toHaveLength(1);
    } finally {
      for (const ws of sockets.splice(0)) ws.terminate();
      await slow.close();
    }
  });

  it('closes an idle connection with 1001 after idleTimeoutMs', async () => {
    const idle = await startWebSocketApi({ port: 0, idleTimeoutMs: 150, routes: {} });
    try {
      const { ws } = await connect(idle.url, {});
      expect((await closed(ws)).code).toBe(1001);
    } finally {
      await idle.close();
    }
  });

  it('fails with a clear error naming the port and the flag when the port is taken', async () => {
    const error = await startWebSocketApi({
      port: api.port,
      routes: {},
      portHint: '--relay-port / FED_RELAY_PORT',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PortInUseError);
    expect((error as Error).message).toBe(
      `WebSocket API emulator cannot listen on 127.0.0.1:${api.port}: the port is already in use. ` +
        'Choose another port with --relay-port / FED_RELAY_PORT.',
    );
  });

  it('evaluates route selection and authorizer policies like API Gateway', () => {
    expect(selectRouteKey('$request.body.action', '{"action":"sync"}')).toBe('sync');
    expect(selectRouteKey('$request.body.meta.kind', '{"meta":{"kind":"k"}}')).toBe('k');
    expect(selectRouteKey('$request.body.action', '[1]')).toBeUndefined();
    expect(() => selectRouteKey('$request.header.x', '{}')).toThrow(/Unsupported route selection expression/);
    const arn = 'arn:aws:execute-api:us-east-1:123456789012:api/test/$connect';
    const statement = (Effect: string, Resource: string | string[], Action = 'execute-api:Invoke') => ({
      Statement: [{ Effect, Resource, Action }],
    });
    expect(policyAllows(statement('Allow', arn), arn)).toBe(true);
    expect(policyAllows(statement('Allow', 'arn:aws:execute-api:*:*:api/*'), arn)).toBe(true);
    expect(policyAllows(statement('Allow', 'arn:aws:execute-api:*:*:other/*'), arn)).toBe(false);
    expect(policyAllows(statement('Allow', arn, 's3:GetObject'), arn)).toBe(false);
    expect(
      policyAllows(
        { Statement: [...statement('Allow', '*').Statement, ...statement('Deny', arn).Statement] },
        arn,
      ),
    ).toBe(false);
    expect(policyAllows(undefined, arn)).toBe(false);
  });
});
