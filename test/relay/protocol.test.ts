import { describe, expect, it } from 'vitest';
import {
  COMMAND_ACTIONS,
  EventMessageSchema,
  MAX_COMMAND_BYTES,
  parseCommand,
  ReplySchema,
  ServerMessageSchema,
} from '../../layers/federation-core/src/index.js';

describe('parseCommand', () => {
  it('accepts every command with its fields', () => {
    const commands = [
      { action: 'discover', id: 'c1' },
      { action: 'discover', id: 'c1', sources: ['default'] },
      { action: 'sync', id: 'c2' },
      { action: 'sync', id: 'c2', since: 42 },
      {
        action: 'subscribe',
        id: 'c3',
        subscriptionId: 's1',
        apiId: 'a1',
        planId: 'p1',
        application: { id: 'app', name: 'App' },
      },
      { action: 'unsubscribe', id: 'c4', subscriptionId: 's1' },
      { action: 'ping', id: 'c5' },
    ];
    for (const c of commands) expect(parseCommand(JSON.stringify(c))).toEqual({ ok: true, command: c });
    expect(new Set(commands.map((c) => c.action))).toEqual(new Set(COMMAND_ACTIONS));
  });

  it('rejects a frame that is not JSON with INVALID_JSON and no command id', () => {
    expect(parseCommand('{"action": "ping",')).toMatchObject({
      ok: false,
      code: 'INVALID_JSON',
      commandId: null,
    });
    expect(parseCommand('[1,2]')).toMatchObject({ ok: false, code: 'INVALID_JSON' });
    expect(parseCommand(undefined)).toMatchObject({ ok: false, code: 'INVALID_JSON' });
  });

  it('rejects an unknown or missing action with UNKNOWN_ACTION, keeping the id', () => {
    expect(parseCommand('{"action":"reboot","id":"x"}')).toMatchObject({
      ok: false,
      code: 'UNKNOWN_ACTION',
      commandId: 'x',
    });
    expect(parseCommand('{"id":"x"}')).toMatchObject({ ok: false, code: 'UNKNOWN_ACTION' });
  });

  it('rejects schema errors with VALIDATION naming the field', () => {
    const missing = parseCommand('{"action":"subscribe","id":"c","apiId":"a","planId":"p"}');
    expect(missing).toMatchObject({ ok: false, code: 'VALIDATION', commandId: 'c' });
    expect(missing.ok ? '' : missing.message).toMatch(/subscriptionId/);
    expect(missing.ok ? '' : missing.message).toMatch(/application/);
    expect(parseCommand('{"action":"sync","id":"c","since":-1}')).toMatchObject({ code: 'VALIDATION' });
    expect(parseCommand('{"action":"ping"}')).toMatchObject({ code: 'VALIDATION', commandId: null });
    expect(parseCommand('{"action":"ping","id":"c","extra":1}')).toMatchObject({ code: 'VALIDATION' });
    expect(
      parseCommand(
        JSON.stringify({
          action: 'subscribe',
          id: 'c',
          subscriptionId: 's',
          apiId: 'a',
          planId: 'p',
          application: { id: 'x', name: 'y' },
          apiKey: 'short',
        }),
      ),
    ).toMatchObject({ code: 'VALIDATION' });
  });

  it('rejects a frame over the command size limit with TOO_LARGE before parsing it', () => {
    const big = JSON.stringify({ action: 'ping', id: 'c', pad: 'x'.repeat(MAX_COMMAND_BYTES) });
    expect(parseCommand(big)).toMatchObject({ ok: false, code: 'TOO_LARGE' });
  });
});

describe('server message schemas', () => {
  it('accept replies, events and parts as the relay sends them', () => {
    expect(
      ServerMessageSchema.safeParse({ type: 'reply', commandId: 'c', status: 'SUCCEEDED', payload: { a: 1 } })
        .success,
    ).toBe(true);
    expect(
      ReplySchema.safeParse({
        type: 'reply',
        commandId: null,
        status: 'FAILED',
        error: { code: 'UNKNOWN_ACTION', message: 'm' },
      }).success,
    ).toBe(true);
    expect(
      EventMessageSchema.safeParse({
        type: 'event',
        seq: 0,
        event: 'hello',
        payload: { agentId: 'a', provider: 'aws-api-gateway', version: '1', sources: [] },
      }).success,
    ).toBe(true);
    expect(
      EventMessageSchema.safeParse({ type: 'event', seq: 3, event: 'sync.completed', payload: { seq: 3 } })
        .success,
    ).toBe(true);
    expect(
      ServerMessageSchema.safeParse({ type: 'part', messageId: 'm', index: 0, count: 2, data: 'AA==' })
        .success,
    ).toBe(true);
  });

  it('rejects an event whose payload does not match its type', () => {
    expect(
      EventMessageSchema.safeParse({ type: 'event', seq: 1, event: 'api.removed', payload: {} }).success,
    ).toBe(false);
    expect(
      ReplySchema.safeParse({
        type: 'reply',
        commandId: 'c',
        status: 'FAILED',
        error: { code: 'NOPE', message: '' },
      }).success,
    ).toBe(false);
  });
});
