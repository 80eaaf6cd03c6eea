/** The relay handlers' event routing (thin wiring; their effects are covered end to end in relay.test.ts). */
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createRelayCommandHandler } from '../../functions/relay-command/handler.js';
import { createRelayConnectionHandler, isHelloRequest } from '../../functions/relay-connection/handler.js';

const context = {
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:relay-connection',
} as Context;

function connectionWorld() {
  const calls: string[] = [];
  const handler = createRelayConnectionHandler({
    connections: {
      put: async (c: { connectionId: string }) => {
        calls.push(`put ${c.connectionId}`);
        return { ...c, connectedAt: '' };
      },
      delete: async (id: string) => {
        calls.push(`delete ${id}`);
      },
    } as never,
    sendHello: async (id) => {
      calls.push(`hello ${id}`);
      return 'sent';
    },
    scheduleHello: async (request, ctx) => {
      calls.push(`schedule ${request.connectionId} via ${ctx.invokedFunctionArn.split(':').at(-1)}`);
    },
  });
  return { handler, calls };
}

describe('relay-connection', () => {
  it('records the connection on $connect, then schedules the hello through its own function', async () => {
    const w = connectionWorld();
    const result = await w.handler(
      {
        requestContext: { eventType: 'CONNECT', connectionId: 'c1', identity: { sourceIp: '1.2.3.4' } },
      } as never,
      context,
    );
    expect(result).toEqual({ statusCode: 200 });
    expect(w.calls).toEqual(['put c1', 'schedule c1 via relay-connection']);
  });

  it('posts the hello only for its own internal event, never for an API Gateway event', async () => {
    const w = connectionWorld();
    await w.handler({ internal: 'hello', connectionId: 'c1' }, context);
    expect(w.calls).toEqual(['hello c1']);
    expect(isHelloRequest({ internal: 'hello', connectionId: 'c1', requestContext: {} })).toBe(false);
    expect(isHelloRequest({ internal: 'hello' })).toBe(false);
    const forged = {
      internal: 'hello',
      connectionId: 'victim',
      requestContext: { eventType: 'MESSAGE', connectionId: 'c2' },
    };
    expect(await w.handler(forged as never, context)).toEqual({ statusCode: 400 });
    expect(w.calls).toEqual(['hello c1']);
  });

  it('deletes the record on $disconnect', async () => {
    const w = connectionWorld();
    await w.handler({ requestContext: { eventType: 'DISCONNECT', connectionId: 'c1' } } as never, context);
    expect(w.calls).toEqual(['delete c1']);
  });

  it('still accepts the connection when the hello cannot be scheduled', async () => {
    const handler = createRelayConnectionHandler({
      connections: { put: async () => ({}), delete: async () => {} } as never,
      sendHello: async () => 'sent',
      scheduleHello: async () => {
        throw new Error('invoke failed');
      },
    });
    expect(
      await handler({ requestContext: { eventType: 'CONNECT', connectionId: 'c1' } } as never, context),
    ).toEqual({ statusCode: 200 });
  });
});

describe('relay-command', () => {
  it('hands a sync continuation to the service with itself and its time budget', async () => {
    const seen: unknown[] = [];
    const handler = createRelayCommandHandler({
      service: {
        handleFrame: async () => undefined,
        continueSync: async (event, budget) => {
          seen.push(event, budget);
        },
      },
    });
    const job = {
      internal: 'sync',
      connectionId: 'c1',
      commandId: 's',
      snapshot: true,
      seq: 0,
      sent: 0,
      part: 2,
    };
    const context = {
      invokedFunctionArn: 'arn:aws:lambda:us-east-1:1:function:relay-command',
      getRemainingTimeInMillis: () => 300_000,
    };
    expect(await handler(job as never, context)).toEqual({ statusCode: 200 });
    expect(seen).toEqual([job, { self: context.invokedFunctionArn, budgetMs: 270_000 }]);
  });

  it('hands MESSAGE frames to the relay service, decoding base64 bodies', async () => {
    const frames: [string, string | undefined | null][] = [];
    const handler = createRelayCommandHandler({
      service: {
        handleFrame: async (id: string, body: string | undefined | null) => {
          frames.push([id, body]);
          return undefined;
        },
        continueSync: async () => {},
      },
    });
    await handler({ requestContext: { eventType: 'MESSAGE', connectionId: 'c1' }, body: '{"a":1}' } as never);
    await handler({
      requestContext: { eventType: 'MESSAGE', connectionId: 'c1' },
      body: Buffer.from('{"b":2}').toString('base64'),
      isBase64Encoded: true,
    } as never);
    expect(frames).toEqual([
      ['c1', '{"a":1}'],
      ['c1', '{"b":2}'],
    ]);
  });

  it('ignores events that are not WebSocket messages', async () => {
    let called = false;
    const handler = createRelayCommandHandler({
      service: {
        handleFrame: async () => {
          called = true;
          return undefined;
        },
        continueSync: async () => {
          called = true;
        },
      },
    });
    expect(await handler({ internal: 'hello', connectionId: 'x' } as never)).toEqual({ statusCode: 400 });
    expect(called).toBe(false);
  });
});
