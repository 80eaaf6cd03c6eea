import { describe, expect, it } from 'vitest';
import {
  decodeExchange,
  ExchangeDecodeError,
  encodeCommand,
  encodeReply,
  envelopeBytes,
  FRAGMENT_BYTES,
  failed,
  fragment,
  MAX_FRAME_BYTES,
  succeeded,
} from '../../gravitee/src/exchange.js';

describe('exchange v1 encoding', () => {
  it('writes a command as t:COMMAND;;et:<type>;;e:<json> with id, type, payload in that order', () => {
    const text = encodeCommand({
      id: 'c1',
      type: 'HELLO',
      payload: { targetId: 'int-1', provider: 'aws-api-gateway' },
    });
    expect(text.toString('utf8')).toBe(
      't:COMMAND;;et:HELLO;;e:{"id":"c1","type":"HELLO","payload":{"targetId":"int-1","provider":"aws-api-gateway"}}',
    );
  });

  it('writes a reply with commandId, type, commandStatus, errorDetails only when set, payload', () => {
    const ok = encodeReply(
      succeeded({ id: 'c2', type: 'HEALTH_CHECK', payload: {} }, { healthy: true, detail: 'x' }),
    );
    expect(ok.toString()).toBe(
      't:REPLY;;et:HEALTH_CHECK;;e:{"commandId":"c2","type":"HEALTH_CHECK","commandStatus":"SUCCEEDED","payload":{"healthy":true,"detail":"x"}}',
    );
    const error = encodeReply(failed({ id: 'c3', type: 'SUBSCRIBE' }, 'NOT_FOUND: no such plan'));
    expect(error.toString()).toBe(
      't:REPLY;;et:SUBSCRIBE;;e:{"commandId":"c3","type":"SUBSCRIBE","commandStatus":"ERROR","errorDetails":"NOT_FOUND: no such plan"}',
    );
  });

  it('reads back what it writes, and keeps a ";;" inside the JSON (the payload is the last field)', () => {
    const command = {
      id: 'c4',
      type: 'SUBSCRIBE',
      payload: { apiId: 'a;;b', subscription: { metadata: { planId: 'p' } } },
    };
    expect(decodeExchange(encodeCommand(command))).toEqual({ kind: 'COMMAND', command });
    const reply = succeeded(command, { subscription: { apiKey: 'k;;k' } });
    expect(decodeExchange(encodeReply(reply))).toEqual({ kind: 'REPLY', reply });
  });

  it('reads a controller command whose JSON names its type and carries no payload', () => {
    const exchange = decodeExchange('t:COMMAND;;et:DISCOVER;;e:{"id":"d1","type":"DISCOVER"}');
    expect(exchange).toEqual({ kind: 'COMMAND', command: { id: 'd1', type: 'DISCOVER', payload: {} } });
  });

  it('rejects an unknown exchange kind, a missing e: field and bad JSON with typed errors', () => {
    expect(() => decodeExchange('t:NOPE;;et:X;;e:{}')).toThrow(ExchangeDecodeError);
    expect(() => decodeExchange('t:COMMAND;;et:X')).toThrow(/without an exchange/);
    expect(() => decodeExchange('t:COMMAND;;et:X;;e:{nope')).toThrow(/not JSON/);
  });

  it('keeps the command id of a command without a type so that a reply can still be sent', () => {
    try {
      decodeExchange('t:COMMAND;;e:{"id":"x1"}');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ExchangeDecodeError);
      expect((error as ExchangeDecodeError).commandId).toBe('x1');
    }
  });

  it('estimates the envelope of a payload (sizing batches under the message limit)', () => {
    const command = { id: '00000000-0000-0000-0000-000000000000', type: 'INGEST', payload: {} };
    const whole = encodeCommand(command).length;
    expect(envelopeBytes('COMMAND', 'INGEST')).toBe(whole - 2);
  });
});

describe('fragmenting', () => {
  it('sends a message up to the fragment size as one frame', () => {
    const message = Buffer.alloc(FRAGMENT_BYTES, 1);
    const frames = fragment(message);
    expect(frames).toHaveLength(1);
    expect(frames[0]).toBe(message);
  });

  it('cuts a larger message into frames under the 65,536-byte frame limit that rejoin to it', () => {
    const message = Buffer.from(Array.from({ length: 200_003 }, (_, i) => i % 251));
    const frames = fragment(message);
    expect(frames.length).toBe(Math.ceil(message.length / FRAGMENT_BYTES));
    for (const frame of frames) expect(frame.length).toBeLessThanOrEqual(MAX_FRAME_BYTES - 14);
    expect(Buffer.concat(frames).equals(message)).toBe(true);
  });

  it('refuses a fragment size that is not positive', () => {
    expect(() => fragment(Buffer.alloc(3), 0)).toThrow(RangeError);
  });
});
