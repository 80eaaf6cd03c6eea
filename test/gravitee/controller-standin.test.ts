/**
 * The Gravitee integration-controller stand-in (test/support/gravitee/controller.ts), exercised with a
 * raw `ws` client speaking the Exchange v1 protocol as Gravitee's connector does.
 */
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ExchangeReply, GraviteeController } from '../support/gravitee/contract.js';
import {
  FrameReader,
  type GraviteeAgentSession,
  type GraviteeStandInOptions,
  readV1,
  startGraviteeController,
  writeV1,
} from '../support/gravitee/controller.js';

const TOKEN = 'stand-in-token';
const INTEGRATION = 'integration-1';

interface Exchange {
  kind: 'COMMAND' | 'REPLY' | 'UNKNOWN';
  exchangeType?: string;
  body: Record<string, unknown>;
}

/** A raw agent: binary v1 exchanges, no reconnect, replies only when told to. */
class RawAgent {
  readonly received: Exchange[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Largest frame payload the controller sent (read off the raw socket). */
  maxFrameFromController = 0;
  private waiters: Array<{ match: (e: Exchange) => boolean; resolve: (e: Exchange) => void }> = [];

  constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    ws.on('error', () => {});
    ws.on('message', (data: Buffer) => {
      const read = readV1(data.toString('utf8'));
      const e: Exchange = {
        kind: read.type,
        exchangeType: read.exchangeType,
        body: JSON.parse(read.exchange ?? '{}'),
      };
      this.received.push(e);
      const waiter = this.waiters.find((w) => w.match(e));
      if (waiter) {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        waiter.resolve(e);
      }
    });
  }

  static async connect(
    controller: GraviteeController,
    options: { token?: string | null; protocol?: string | null; path?: string } = {},
  ): Promise<RawAgent> {
    const headers: Record<string, string> = {};
    if (options.token !== null) headers.Authorization = `bearer ${options.token ?? TOKEN}`;
    if (options.protocol !== null) headers['X-Gravitee-Exchange-Protocol'] = options.protocol ?? 'v1';
    const url = `${controller.endpoint.replace(/^http/, 'ws')}${options.path ?? '/exchange/controller'}`;
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    const agent = new RawAgent(ws);
    let socket: Socket | undefined;
    ws.on('upgrade', (res) => {
      socket = res.socket as Socket;
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
    const reader = new FrameReader(
      {
        frame: (bytes, opcode) => {
          if (opcode < 0x08) agent.maxFrameFromController = Math.max(agent.maxFrameFromController, bytes);
        },
        message: () => {},
        frameTooLarge: () => {},
        messageTooLarge: () => {},
      },
      Number.MAX_SAFE_INTEGER,
      Number.MAX_SAFE_INTEGER,
    );
    socket?.on('data', (chunk: Buffer) => reader.push(chunk));
    return agent;
  }

  /** Next exchange matching, searching what already arrived first (each one consumed once). */
  next(match: (e: Exchange) => boolean, timeoutMs = 10_000): Promise<Exchange> {
    for (let i = 0; i < this.received.length; i++) {
      const e = this.received[i] as Exchange;
      if (match(e)) {
        this.received.splice(i, 1);
        return Promise.resolve(e);
      }
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no matching exchange')), timeoutMs);
      this.waiters.push({
        match,
        resolve: (e) => {
          clearTimeout(timer);
          this.received.splice(this.received.indexOf(e), 1);
          resolve(e);
        },
      });
    });
  }

  command(type: string): Promise<Exchange> {
    return this.next((e) => e.kind === 'COMMAND' && e.body.type === type);
  }

  replyTo(commandId: string): Promise<Exchange> {
    return this.next((e) => e.kind === 'REPLY' && e.body.commandId === commandId);
  }

  sendCommand(id: string, type: string, payload: Record<string, unknown>): void {
    this.ws.send(writeV1('COMMAND', type, { id, type, payload }), { binary: true });
  }

  sendReply(command: Exchange, payload: Record<string, unknown>, status = 'SUCCEEDED'): void {
    const type = String(command.body.type);
    this.ws.send(
      writeV1('REPLY', type, { commandId: command.body.id, type, commandStatus: status, payload }),
      {
        binary: true,
      },
    );
  }

  async hello(targetId = INTEGRATION, provider = 'aws-api-gateway'): Promise<Exchange> {
    this.sendCommand('hello-1', 'HELLO', { targetId, provider });
    return this.replyTo('hello-1');
  }

  /** HELLO, then answer PRIMARY; returns the PRIMARY command. */
  async join(): Promise<Exchange> {
    await this.hello();
    const primary = await this.command('PRIMARY');
    this.sendReply(primary, {});
    return primary;
  }
}

let controller: GraviteeController | undefined;
const agents: RawAgent[] = [];

async function start(options: Partial<GraviteeStandInOptions> = {}): Promise<GraviteeController> {
  controller = await startGraviteeController({
    tokens: [TOKEN],
    integrations: {
      [INTEGRATION]: { provider: 'aws-api-gateway' },
      other: { provider: 'azure-api-management' },
    },
    healthCheckIntervalMs: 100,
    ...options,
  } as GraviteeStandInOptions);
  return controller;
}

async function connect(
  c: GraviteeController,
  options?: Parameters<typeof RawAgent.connect>[1],
): Promise<RawAgent> {
  const agent = await RawAgent.connect(c, options);
  agents.push(agent);
  return agent;
}

afterEach(async () => {
  for (const a of agents.splice(0)) a.ws.terminate();
  await controller?.stop();
  controller = undefined;
});

describe('Gravitee controller stand-in: the upgrade', () => {
  it('refuses a missing or unknown token with 401, counting each as unauthorized', async () => {
    const c = await start();
    await expect(connect(c, { token: null })).rejects.toThrow('HTTP 401');
    await expect(connect(c, { token: 'wrong' })).rejects.toThrow('HTTP 401');
    expect(c.violations.map((v) => v.kind)).toEqual(['unauthorized', 'unauthorized']);
    expect(c.upgradeAttempts).toBe(2);
  });

  it('serves only <endpoint>/exchange/controller', async () => {
    const c = await start();
    expect(c.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/integration-controller$/);
    await expect(connect(c, { path: '/ws/controller' })).rejects.toThrow('HTTP 404');
    const agent = await connect(c);
    expect(agent.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('takes a channel without X-Gravitee-Exchange-Protocol as legacy: a v1 message closes it with 1002', async () => {
    const c = await start();
    const agent = await connect(c, { protocol: null });
    agent.sendCommand('h', 'HELLO', { targetId: INTEGRATION, provider: 'aws-api-gateway' });
    expect((await agent.closed).code).toBe(1002);
    expect(c.violations.map((v) => v.kind)).toContain('missing-protocol-header');
    expect(c.status(INTEGRATION)).toBe('DISCONNECTED');
  });
});

describe('Gravitee controller stand-in: framing', () => {
  it('closes a text frame with 1003', async () => {
    const c = await start();
    const agent = await connect(c);
    agent.ws.send('t:COMMAND;;et:HELLO;;e:{}');
    expect(await agent.closed).toEqual({ code: 1003, reason: 'Unsupported text frame' });
    expect(c.violations.map((v) => v.kind)).toEqual(['text-frame']);
  });

  it('closes a single frame over 65,536 bytes with 1009', async () => {
    const c = await start();
    const agent = await connect(c);
    await agent.join();
    const session = (await c.nextSession()) as GraviteeAgentSession;
    agent.ws.send(Buffer.alloc(65_537, 0x20), { binary: true });
    expect(await agent.closed).toEqual({
      code: 1009,
      reason: 'Max frame length of 65536 has been exceeded.',
    });
    expect(c.violations.map((v) => v.kind)).toEqual(['frame-too-large']);
    expect(session.maxFrameBytes).toBe(65_537);
    expect(c.status(INTEGRATION)).toBe('DISCONNECTED');
  });

  it('accepts a 200 KB INGEST sent as fragments of 64 KiB, records it and replies SUCCEEDED', async () => {
    const c = await start();
    const agent = await connect(c);
    await agent.join();
    const session = (await c.nextSession()) as GraviteeAgentSession;
    const starting = session.send('START_INGEST', { ingestJobId: 'job-1', apiIds: [] });
    agent.sendReply(await agent.command('START_INGEST'), { ingestJobId: 'job-1', total: 40 });
    expect((await starting).payload).toEqual({ ingestJobId: 'job-1', total: 40 });
    const apis = Array.from({ length: 40 }, (_, i) => ({
      uniqueId: `api-${i}`,
      id: `api-${i}`,
      name: `API ${i}`,
      version: 'prod',
      connectionDetails: { url: `https://x${i}.execute-api.us-east-1.amazonaws.com/prod` },
      type: 'PROXY',
      pages: [{ pageType: 'SWAGGER', content: 'x'.repeat(5_000), filename: `api-${i}.json` }],
      plans: [
        { id: `plan-${i}`, name: 'Gold', planSecurityType: 'API_KEY', characteristics: ['1000 req/s'] },
      ],
      metadata: [{ name: 'team', value: 'payments', format: 'STRING' }],
    }));
    const data = writeV1('COMMAND', 'INGEST', {
      id: 'ingest-1',
      type: 'INGEST',
      payload: { ingestJobId: 'job-1', apis, done: true },
    });
    expect(data.length).toBeGreaterThan(200_000);
    for (let offset = 0; offset < data.length; offset += 65_536) {
      const end = Math.min(offset + 65_536, data.length);
      agent.ws.send(data.subarray(offset, end), { binary: true, fin: end === data.length });
    }
    const reply = await agent.replyTo('ingest-1');
    expect(reply.body).toEqual({
      commandId: 'ingest-1',
      type: 'INGEST',
      commandStatus: 'SUCCEEDED',
      payload: {},
    });
    const ingest = await session.nextAgentCommand('INGEST');
    expect(ingest.payload).toMatchObject({ ingestJobId: 'job-1', done: true });
    expect((ingest.payload.apis as unknown[]).length).toBe(40);
    expect(session.maxFrameBytes).toBe(65_536);
    expect(session.maxMessageBytes).toBe(data.length);
    expect(c.violations).toEqual([]);
  });

  it('sends its own messages over 64 KiB as fragments of at most 65,536 bytes', async () => {
    const c = await start();
    const agent = await connect(c);
    await agent.join();
    const session = await c.nextSession();
    const pending = session.send('SUBSCRIBE', { apiId: 'a', padding: 'p'.repeat(150_000) });
    const subscribe = await agent.command('SUBSCRIBE');
    expect((subscribe.body.payload as { padding: string }).padding.length).toBe(150_000);
    expect(agent.maxFrameFromController).toBe(65_536);
    agent.sendReply(subscribe, {
      subscription: { graviteeSubscriptionId: 's', apiKey: 'k', metadata: { keyId: 'id' } },
    });
    expect((await pending).payload).toEqual({
      subscription: { graviteeSubscriptionId: 's', apiKey: 'k', metadata: { keyId: 'id' } },
    });
  });
});

describe('Gravitee controller stand-in: HELLO', () => {
  it('accepts a known integration with its provider and replies {targetId}', async () => {
    const c = await start();
    const agent = await connect(c);
    const reply = await agent.hello();
    expect(reply.exchangeType).toBe('HELLO');
    expect(reply.body).toEqual({
      commandId: 'hello-1',
      type: 'HELLO',
      commandStatus: 'SUCCEEDED',
      payload: { targetId: INTEGRATION },
    });
    const session = await c.nextSession();
    expect(session.targetId).toBe(INTEGRATION);
    expect(session.hello).toEqual({ targetId: INTEGRATION, provider: 'aws-api-gateway' });
    expect(session.headers.authorization).toBe(`bearer ${TOKEN}`);
    expect(session.headers['x-gravitee-exchange-protocol']).toBe('v1');
    expect(c.status(INTEGRATION)).toBe('CONNECTED');
    expect(c.helloErrors).toEqual([]);
  });

  it.each([
    ['an unknown integration', 'nope', 'aws-api-gateway', 'Integration [id=nope] not found'],
    [
      'another provider',
      'other',
      'aws-api-gateway',
      'Integration [id=other] does not match. Expected provider [provider=azure-api-management]',
    ],
  ])('answers %s with ERROR and APIM reason', async (_what, targetId, provider, reason) => {
    const c = await start();
    const agent = await connect(c);
    const reply = await agent.hello(targetId, provider);
    expect(reply.body).toEqual({
      commandId: 'hello-1',
      type: 'HELLO',
      commandStatus: 'ERROR',
      errorDetails: reason,
    });
    expect(c.helloErrors).toEqual([{ targetId, reason }]);
    expect(c.status(targetId)).toBe('DISCONNECTED');
    await expect(c.nextSession(200)).rejects.toThrow('no accepted HELLO');
  });

  it('closes a command sent before HELLO with 1002', async () => {
    const c = await start();
    const agent = await connect(c);
    agent.sendCommand('i', 'INGEST', { ingestJobId: 'j', apis: [], done: true });
    expect((await agent.closed).code).toBe(1002);
    expect(c.violations.map((v) => v.kind)).toEqual(['command-before-hello']);
  });

  it('unregisters a channel still without an accepted HELLO after the grace: GOOD_BYE {reconnect: true}', async () => {
    const c = await start({ helloGraceMs: 100 });
    const agent = await connect(c);
    await agent.hello('nope');
    const goodBye = await agent.command('GOOD_BYE');
    expect(goodBye.body.payload).toEqual({ reconnect: true });
    agent.ws.close(1013);
    expect((await agent.closed).code).toBe(1013);
  });
});

describe('Gravitee controller stand-in: PRIMARY, HEALTH_CHECK and status', () => {
  it('sends PRIMARY {primary: true}, then HEALTH_CHECK {} each interval while the agent is healthy', async () => {
    const c = await start();
    const agent = await connect(c);
    const primary = await agent.join();
    expect(primary.exchangeType).toBe('PRIMARY');
    expect(primary.body).toMatchObject({ type: 'PRIMARY', payload: { primary: true } });
    expect(typeof primary.body.id).toBe('string');
    const session = (await c.nextSession()) as GraviteeAgentSession;
    for (let i = 0; i < 2; i++) {
      const check = await agent.command('HEALTH_CHECK');
      expect(check.body.payload).toEqual({});
      agent.sendReply(check, { healthy: true, detail: 'ok' });
      const reply: ExchangeReply = await session.nextHealthReply();
      expect(reply).toMatchObject({
        type: 'HEALTH_CHECK',
        commandStatus: 'SUCCEEDED',
        payload: { healthy: true },
      });
    }
    expect(c.status(INTEGRATION)).toBe('CONNECTED');
    expect(session.primary).toBe(true);
    expect(session.replies.map((r) => r.type)).toEqual(['PRIMARY', 'HEALTH_CHECK', 'HEALTH_CHECK']);
  });

  it('marks an unhealthy agent DISCONNECTED and unregisters it with GOOD_BYE {targetId, reconnect: true}', async () => {
    const c = await start();
    const agent = await connect(c);
    await agent.join();
    const session = await c.nextSession();
    const check = await agent.command('HEALTH_CHECK');
    agent.sendReply(check, { healthy: false, detail: 'relay down' });
    expect((await session.nextHealthReply()).payload).toEqual({ healthy: false, detail: 'relay down' });
    expect(c.status(INTEGRATION)).toBe('DISCONNECTED');
    const goodBye = await agent.command('GOOD_BYE');
    expect(goodBye.body.payload).toEqual({ targetId: INTEGRATION, reconnect: true });
    agent.ws.close(1013, 'GoodBye Command with reconnection requested.');
    expect((await session.closed).code).toBe(1013);
  });

  it('marks an agent that does not answer HEALTH_CHECK DISCONNECTED', async () => {
    const c = await start({ replyTimeoutMs: 300 });
    const agent = await connect(c);
    await agent.join();
    const session = await c.nextSession();
    await agent.command('HEALTH_CHECK');
    await agent.command('GOOD_BYE'); // sent once the health check timed out
    expect(c.status(INTEGRATION)).toBe('DISCONNECTED');
    expect((await session.closed).code).toBe(1011);
  });

  it('marks an agent whose socket closed DISCONNECTED, and CONNECTED again after a new HELLO', async () => {
    const c = await start();
    const first = await connect(c);
    await first.join();
    const session = await c.nextSession();
    first.ws.close(1000);
    await session.closed;
    expect(c.status(INTEGRATION)).toBe('DISCONNECTED');
    const second = await connect(c);
    await second.join();
    expect((await c.nextSession()).targetId).toBe(INTEGRATION);
    expect(c.status(INTEGRATION)).toBe('CONNECTED');
  });
});

describe('Gravitee controller stand-in: commands', () => {
  it('resolves send() with the agent reply and rejects after the reply timeout', async () => {
    const c = await start();
    const agent = await connect(c);
    await agent.join();
    const session = (await c.nextSession()) as GraviteeAgentSession;
    const discovering = session.send('DISCOVER', {});
    const discover = await agent.command('DISCOVER');
    expect(discover.body.payload).toEqual({});
    agent.sendReply(discover, { apis: [], isPartialDiscovery: false });
    expect(await discovering).toEqual({
      commandId: discover.body.id,
      type: 'DISCOVER',
      commandStatus: 'SUCCEEDED',
      payload: { apis: [], isPartialDiscovery: false },
    });
    await expect(session.send('START_INGEST', { ingestJobId: 'j', apiIds: [] }, 200)).rejects.toThrow(
      'no reply to START_INGEST',
    );
  });

  it('drops a reply Gravitee could not read (Api.metadata must be a list of {name, value, format})', async () => {
    const c = await start();
    const agent = await connect(c);
    await agent.join();
    const session = (await c.nextSession()) as GraviteeAgentSession;
    const discovering = session.send('DISCOVER', {}, 500);
    const discover = await agent.command('DISCOVER');
    agent.sendReply(discover, { apis: [{ id: 'a', metadata: { team: 'x' } }], isPartialDiscovery: false });
    await expect(discovering).rejects.toThrow('apis[0].metadata: expected an array');
    expect(c.violations.map((v) => v.kind)).toEqual(['malformed-exchange']);
  });

  it('replies SUCCEEDED to an INGEST of a job it never started, recording that APIM ingests nothing', async () => {
    const c = await start();
    const agent = await connect(c);
    await agent.join();
    agent.sendCommand('i', 'INGEST', { ingestJobId: 'never-started', apis: [], done: true });
    expect((await agent.replyTo('i')).body).toMatchObject({ type: 'INGEST', commandStatus: 'SUCCEEDED' });
    expect(c.violations).toMatchObject([
      { kind: 'malformed-exchange', detail: expect.stringContaining('never-started') },
    ]);
  });

  it('answers an INGEST whose metadata has no format with ERROR, as APIM fails on it', async () => {
    const c = await start();
    const agent = await connect(c);
    await agent.join();
    const session = await c.nextSession();
    const starting = session.send('START_INGEST', { ingestJobId: 'job', apiIds: ['a'] });
    agent.sendReply(await agent.command('START_INGEST'), { ingestJobId: 'job', total: 1 });
    await starting;
    agent.sendCommand('i', 'INGEST', {
      ingestJobId: 'job',
      apis: [{ id: 'a', metadata: [{ name: 'team', value: 'x' }] }],
      done: true,
    });
    const reply = await agent.replyTo('i');
    expect(reply.body).toMatchObject({ type: 'INGEST', commandStatus: 'ERROR' });
    expect(reply.body.errorDetails).toContain('apis[0].metadata[0].format');
  });

  it('answers agent commands it has no handler for as Gravitee does (NO_REPLY, UNKNOWN)', async () => {
    const c = await start();
    const agent = await connect(c);
    await agent.join();
    const session = await c.nextSession();
    agent.sendCommand('d', 'DISCOVER', {});
    agent.sendCommand('x', 'FROBNICATE', {});
    expect((await agent.replyTo('d')).body).toMatchObject({ type: 'NO_REPLY', commandStatus: 'ERROR' });
    expect((await agent.replyTo('x')).body).toMatchObject({
      type: 'UNKNOWN',
      commandStatus: 'ERROR',
      errorDetails: 'Command unknown',
    });
    expect(session.agentCommands.map((cmd) => cmd.type)).toEqual(['DISCOVER', 'FROBNICATE']);
  });

  it('goodBye(false) sends GOOD_BYE {targetId, reconnect: false} and resolves once the socket closed', async () => {
    const c = await start();
    const agent = await connect(c);
    await agent.join();
    const session = await c.nextSession();
    const leaving = session.goodBye(false);
    const goodBye = await agent.command('GOOD_BYE');
    expect(goodBye.body.payload).toEqual({ targetId: INTEGRATION, reconnect: false });
    agent.ws.close(1000, 'GoodBye Command without reconnection.');
    await leaving;
    expect((await session.closed).code).toBe(1000);
    expect(c.status(INTEGRATION)).toBe('DISCONNECTED');
  });

  it('drop() closes the socket abruptly', async () => {
    const c = await start();
    const agent = await connect(c);
    await agent.join();
    const session = await c.nextSession();
    session.drop();
    expect((await agent.closed).code).toBe(1006);
    expect(c.status(INTEGRATION)).toBe('DISCONNECTED');
  });
});

describe('FrameReader', () => {
  const frame = (opcode: number, fin: boolean, payload: Buffer): Buffer => {
    const mask = Buffer.from([1, 2, 3, 4]);
    const len = payload.length;
    const head =
      len < 126
        ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | len])
        : Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, len >> 8, len & 0xff]);
    const body = Buffer.from(payload.map((b, i) => b ^ (mask[i & 3] ?? 0)));
    return Buffer.concat([head, mask, body]);
  };

  function collect(maxFrame: number, maxMessage: number) {
    const out = { messages: [] as string[], events: [] as string[] };
    const reader = new FrameReader(
      {
        frame: () => {},
        message: (_op, data) => out.messages.push(data ? data.toString() : '<dropped>'),
        frameTooLarge: (n) => out.events.push(`frame ${n}`),
        messageTooLarge: (n) => out.events.push(`message ${n}`),
      },
      maxFrame,
      maxMessage,
    );
    return { reader, out };
  }

  it('reassembles masked fragments fed one byte at a time', () => {
    const { reader, out } = collect(200, 1_000);
    const bytes = Buffer.concat([
      frame(0x2, false, Buffer.from('hello ')),
      frame(0x9, true, Buffer.alloc(0)),
      frame(0x0, true, Buffer.from('x'.repeat(150))),
    ]);
    for (const b of bytes) reader.push(Buffer.from([b]));
    expect(out.messages).toEqual([`hello ${'x'.repeat(150)}`]);
  });

  it('drops a message over the message limit and stops at a frame over the frame limit', () => {
    const { reader, out } = collect(10, 15);
    reader.push(Buffer.concat([frame(0x2, false, Buffer.alloc(10)), frame(0x0, true, Buffer.alloc(10))]));
    reader.push(frame(0x2, true, Buffer.from('ok')));
    reader.push(frame(0x2, true, Buffer.alloc(11)));
    reader.push(frame(0x2, true, Buffer.from('never')));
    expect(out.events).toEqual(['message 20', 'frame 11']);
    expect(out.messages).toEqual(['<dropped>', 'ok']);
  });
});
