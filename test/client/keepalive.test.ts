/**
 * The reference client against API Gateway's WebSocket limits, as the local emulator enforces them: it
 * never sends a frame over 32 KB (API Gateway would close the connection with 1009), and it sends a
 * `ping` before the idle timeout (10 minutes on AWS, shortened here) closes a quiet connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientError, ControlPlaneClient } from '../../client/control-plane-client.js';
import { startWebSocketApi, type WebSocketApi } from '../../local/websocket-api.js';

const IDLE_TIMEOUT_MS = 1_500;
let api: WebSocketApi;
const received: string[] = [];

/** A relay stand-in that answers every command with a SUCCEEDED reply (route response). */
const answer = async (event: unknown) => {
  const body = (event as { body: string }).body;
  received.push(body);
  const command = JSON.parse(body) as { id?: string };
  return {
    statusCode: 200,
    body: JSON.stringify({ type: 'reply', commandId: command.id ?? null, status: 'SUCCEEDED' }),
  };
};

beforeAll(async () => {
  api = await startWebSocketApi({ port: 0, idleTimeoutMs: IDLE_TIMEOUT_MS, routes: { $default: answer } });
});
afterAll(async () => {
  await api?.close();
});

const client = (pingIntervalMs: number | false) =>
  new ControlPlaneClient({
    url: api.url,
    token: 't',
    syncOnConnect: false,
    reconnect: false,
    pingIntervalMs,
  });

const closeOf = (c: ControlPlaneClient) =>
  new Promise<{ code: number }>((resolve) => c.once('close', (e: { code: number }) => resolve(e)));

describe('reference client within API Gateway WebSocket limits', () => {
  it('refuses to send a command over 32 KB and keeps the connection', async () => {
    const c = client(false);
    await c.connect();
    try {
      const sources = Array.from({ length: 1_000 }, (_, i) => `source-${String(i).padStart(40, '0')}`);
      const error = await c.request({ action: 'discover', sources }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ClientError);
      expect((error as Error).message).toMatch(/discover command is \d+ bytes; a command is at most 32000/);
      expect(received.some((b) => b.includes('source-'))).toBe(false);
      expect(await c.request({ action: 'ping' })).toMatchObject({ status: 'SUCCEEDED' });
      expect(c.connected).toBe(true);
    } finally {
      await c.close();
    }
  });

  it('a quiet connection is closed by the idle timeout (1001)', async () => {
    const c = client(false);
    const closing = closeOf(c);
    await c.connect();
    expect((await closing).code).toBe(1001);
  });

  it('pings before the idle timeout, so the connection outlives it', async () => {
    const c = client(200);
    let closedEarly = false;
    c.once('close', () => {
      closedEarly = true;
    });
    await c.connect();
    try {
      const pingsBefore = received.filter((b) => b.includes('"ping"')).length;
      await new Promise((r) => setTimeout(r, IDLE_TIMEOUT_MS * 2));
      expect(closedEarly).toBe(false);
      expect(c.connected).toBe(true);
      expect(received.filter((b) => b.includes('"ping"')).length).toBeGreaterThan(pingsBefore);
    } finally {
      await c.close();
    }
  });
});
