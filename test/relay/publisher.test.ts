/**
 * ConnectionPublisher's delivery policy with an in-memory `@connections` behind a real SDK client (ordering,
 * the client's retries, Gone handling, bounded concurrency). The emulator-backed behaviour is in relay.test.ts.
 */
import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import type { HttpRequest } from '@aws-sdk/types';
import { HttpResponse } from '@smithy/core/protocols';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import { describe, expect, it } from 'vitest';
import {
  type Connection,
  ConnectionPublisher,
  EventType,
  MAX_MESSAGE_BYTES,
  MESSAGE_BUDGET_BYTES,
  type OutboxEvent,
} from '../../layers/federation-core/src/index.js';

type Behaviour = (connectionId: string, data: string, attempt: number) => 'ok' | 'gone' | 'error';

function fakeWorld(ids: string[], behaviour: Behaviour = () => 'ok') {
  const posted = new Map<string, string[]>();
  const attempts = new Map<string, number>();
  const deleted: string[] = [];
  const logs: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  // A real `@connections` client over an in-memory HTTP handler, so the SDK's own retries run.
  const requestHandler = {
    handle: async (request: HttpRequest) => {
      const id = decodeURIComponent(request.path.split('/@connections/')[1] ?? '');
      const body = request.body as string | Uint8Array;
      const data = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
      const attempt = (attempts.get(`${id}|${data}`) ?? 0) + 1;
      attempts.set(`${id}|${data}`, attempt);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 1));
      inFlight--;
      const outcome = behaviour(id, data, attempt);
      if (outcome === 'ok') posted.set(id, [...(posted.get(id) ?? []), data]);
      const [statusCode, errorType] =
        outcome === 'gone'
          ? [410, 'GoneException']
          : outcome === 'error'
            ? [500, 'InternalServerError']
            : [200];
      const headers: Record<string, string> = errorType ? { 'x-amzn-errortype': errorType } : {};
      return {
        response: new HttpResponse({
          statusCode,
          headers,
          body: new TextEncoder().encode(errorType ? JSON.stringify({ message: outcome }) : ''),
        }),
      };
    },
  };
  const client = new ApiGatewayManagementApiClient({
    region: 'us-east-1',
    endpoint: 'https://relay.example/live',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    requestHandler,
    // Three attempts, 1 ms apart (the agent's client: CONNECTIONS_MAX_ATTEMPTS, standard backoff).
    retryStrategy: new ConfiguredRetryStrategy(3, 1),
  });
  const connections = {
    list: async (): Promise<Connection[]> =>
      ids.filter((id) => !deleted.includes(id)).map((connectionId) => ({ connectionId, connectedAt: '' })),
    delete: async (id: string) => {
      deleted.push(id);
    },
  };
  const logger = {
    info: (m: string) => logs.push(`info ${m}`),
    warn: (m: string) => logs.push(`warn ${m}`),
    error: (m: string) => logs.push(`error ${m}`),
  };
  const publisher = new ConnectionPublisher({
    client,
    connections,
    logger,
    concurrency: 3,
  });
  return { publisher, posted, deleted, logs, attempts, maxInFlight: () => maxInFlight };
}

const events = (n: number): OutboxEvent[] =>
  Array.from({ length: n }, (_, i) => ({
    seq: n - i, // deliberately out of order
    event: EventType.SUBSCRIPTION_REVOKED,
    payload: { subscriptionId: `s${n - i}`, apiId: 'a', planId: 'p', reason: 'TEST' },
    createdAt: '',
  }));

describe('ConnectionPublisher', () => {
  it('posts every event to every connection in sequence order, at most `concurrency` connections at once', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => `c${i}`);
    const w = fakeWorld(ids);
    const report = await w.publisher.publish(events(5));
    expect(report).toEqual({ connections: 10, delivered: 50, gone: 0, failed: 0 });
    for (const id of ids) expect(w.posted.get(id)?.map((d) => JSON.parse(d).seq)).toEqual([1, 2, 3, 4, 5]);
    expect(w.maxInFlight()).toBeLessThanOrEqual(3);
  });

  it('retries a transient failure and delivers', async () => {
    const w = fakeWorld(['c1'], (_id, _data, attempt) => (attempt < 3 ? 'error' : 'ok'));
    const report = await w.publisher.publish(events(1));
    expect(report.delivered).toBe(1);
    expect([...w.attempts.values()]).toEqual([3]);
  });

  it('stops a connection at a persistent failure, logs it and keeps the others going', async () => {
    const w = fakeWorld(['bad', 'good'], (id, data) =>
      id === 'bad' && JSON.parse(data).seq === 2 ? 'error' : 'ok',
    );
    const report = await w.publisher.publish(events(3));
    expect(report).toMatchObject({ delivered: 1 + 3, failed: 1, gone: 0 });
    // No gap: the failing connection gets nothing after seq 1, and catches up with sync.
    expect(w.posted.get('bad')?.map((d) => JSON.parse(d).seq)).toEqual([1]);
    expect(w.deleted).toEqual([]);
    expect(w.logs).toContain('warn Event not delivered; it stays in the outbox for sync');
  });

  it('deletes the record of a gone connection without retrying', async () => {
    const w = fakeWorld(['gone', 'live'], (id) => (id === 'gone' ? 'gone' : 'ok'));
    const report = await w.publisher.publish(events(2));
    expect(report).toMatchObject({ gone: 1, delivered: 2 });
    expect(w.deleted).toEqual(['gone']);
    expect([...w.attempts.entries()].filter(([k]) => k.startsWith('gone|')).map(([, v]) => v)).toEqual([1]);
  });

  it('retries Gone for a hello until $connect has returned', async () => {
    const w = fakeWorld(['new'], (_id, _data, attempt) => (attempt < 3 ? 'gone' : 'ok'));
    const outcome = await w.publisher.postMessage(
      'new',
      { type: 'event', seq: 0, event: 'sync.completed', payload: { seq: 0 } },
      { goneRetries: 5, goneRetryDelayMs: 1 },
    );
    expect(outcome).toBe('sent');
    expect(w.deleted).toEqual([]);
  });

  it('splits a large message into parts within the frame limit', async () => {
    const w = fakeWorld(['c']);
    const { randomBytes } = await import('node:crypto');
    await w.publisher.postMessage('c', {
      type: 'reply',
      commandId: 'x',
      status: 'SUCCEEDED',
      payload: randomBytes(300_000).toString('base64'),
    });
    const frames = w.posted.get('c') ?? [];
    expect(frames.length).toBeGreaterThan(2);
    for (const f of frames) {
      expect(JSON.parse(f).type).toBe('part');
      expect(Buffer.byteLength(f)).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
      expect(Buffer.byteLength(f)).toBeLessThanOrEqual(MESSAGE_BUDGET_BYTES);
    }
  });

  it('loads the definition document of api.upserted once per sha256 and sends it inline', async () => {
    const posted: string[] = [];
    let loads = 0;
    const publisher = new ConnectionPublisher({
      client: {
        send: async (c: { input: { Data: string } }) => {
          posted.push(c.input.Data);
          return {};
        },
      } as never,
      connections: { list: async () => [{ connectionId: 'c', connectedAt: '' }], delete: async () => {} },
      loadDefinition: async () => {
        loads++;
        return { openapi: '3.0.1' };
      },
    });
    const sha256 = 'a'.repeat(64);
    const api = (id: string) => ({ id, definition: { format: 'openapi-3.0', sha256, size: 10 } });
    await publisher.publish([
      { seq: 1, event: EventType.API_UPSERTED, payload: api('x'), createdAt: '' },
      { seq: 2, event: EventType.API_UPSERTED, payload: api('y'), createdAt: '' },
    ]);
    expect(loads).toBe(1);
    expect(posted.map((p) => JSON.parse(p).payload.definition)).toEqual([
      { format: 'openapi-3.0', sha256, size: 10, document: { openapi: '3.0.1' } },
      { format: 'openapi-3.0', sha256, size: 10, document: { openapi: '3.0.1' } },
    ]);
  });
});
