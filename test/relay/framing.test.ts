import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeFrame,
  encodeMessage,
  encodeText,
  MAX_MESSAGE_BYTES,
  MESSAGE_BUDGET_BYTES,
  PartSchema,
  Reassembler,
  ReassemblyError,
} from '../../layers/federation-core/src/index.js';

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

function reassemble(frames: string[], reassembler = new Reassembler()): unknown[] {
  const out: unknown[] = [];
  for (const f of frames) {
    const m = decodeFrame(f, reassembler);
    if (m !== undefined) out.push(m);
  }
  return out;
}

describe('encodeMessage', () => {
  it('sends a message that fits as one plain frame', () => {
    const message = { type: 'reply', commandId: '1', status: 'SUCCEEDED' };
    expect(encodeMessage(message)).toEqual([JSON.stringify(message)]);
  });

  it('splits a 1 MB incompressible message into parts that each fit 128 KB with a safety margin', () => {
    const big = { type: 'event', seq: 1, event: 'api.upserted', payload: { blob: randomText(1024 * 1024) } };
    const frames = encodeMessage(big);
    expect(frames.length).toBeGreaterThanOrEqual(6);
    for (const f of frames) {
      expect(bytes(f)).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
      // Under 128 KB read as 128,000 bytes too, with room to spare.
      expect(bytes(f)).toBeLessThanOrEqual(MESSAGE_BUDGET_BYTES);
      expect(bytes(f)).toBeLessThan(128_000 - 4096);
      expect(PartSchema.parse(JSON.parse(f)).count).toBe(frames.length);
    }
    expect(reassemble(frames)).toEqual([big]);
  });

  it('keeps a message of exactly the budget whole and splits one byte more', () => {
    const pad = (n: number) => JSON.stringify({ p: 'x'.repeat(n) });
    const exact = pad(MESSAGE_BUDGET_BYTES - bytes(pad(0)));
    expect(bytes(exact)).toBe(MESSAGE_BUDGET_BYTES);
    expect(encodeText(exact)).toEqual([exact]);
    const over = pad(MESSAGE_BUDGET_BYTES - bytes(pad(0)) + 1);
    const frames = encodeText(over);
    expect(frames.length).toBeGreaterThanOrEqual(2);
    expect(reassemble(frames)).toEqual([JSON.parse(over)]);
  });

  it('round-trips any JSON value under any small frame limit, every frame within the limit', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer({ min: 200, max: 2000 }), (value, maxBytes) => {
        const frames = encodeMessage(value, { maxBytes });
        for (const f of frames) expect(bytes(f)).toBeLessThanOrEqual(maxBytes);
        expect(reassemble(frames)).toEqual([JSON.parse(JSON.stringify(value))]);
      }),
      { numRuns: 300 },
    );
  });

  it('reassembles byte-identical text with multi-byte characters', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 3000 }), (s) => {
        const json = JSON.stringify({ s });
        const frames = encodeText(json, { maxBytes: 300 });
        const r = new Reassembler();
        let text: string | undefined;
        for (const f of frames) {
          const parsed = JSON.parse(f);
          text = parsed.type === 'part' ? r.accept(parsed) : f;
        }
        expect(text).toBe(json);
      }),
      { numRuns: 200 },
    );
  });
});

describe('Reassembler', () => {
  it('reassembles interleaved, shuffled parts of several messages', () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue(), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        (values, seed) => {
          const frames = values.flatMap((v, i) =>
            encodeMessage({ i, v, pad: randomText(600) }, { maxBytes: 250, messageId: `m${i}` }),
          );
          const shuffled = shuffle(frames, seed);
          const out = reassemble(shuffled, new Reassembler({ maxPending: 10 })) as {
            i: number;
            v: unknown;
          }[];
          expect(out.map((m) => m.i).sort()).toEqual(values.map((_, i) => i));
          for (const m of out) expect(m.v).toEqual(JSON.parse(JSON.stringify(values[m.i])));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('ignores a duplicated part', () => {
    const frames = encodeMessage({ pad: randomText(2000) }, { maxBytes: 500 });
    const withDup = [frames[0] as string, ...frames];
    expect(reassemble(withDup)).toHaveLength(1);
  });

  it('rejects a part whose count disagrees with earlier parts and discards that message', () => {
    const r = new Reassembler();
    r.accept({ type: 'part', messageId: 'a', index: 0, count: 3, data: 'AA==' });
    expect(() => r.accept({ type: 'part', messageId: 'a', index: 1, count: 4, data: 'AA==' })).toThrow(
      ReassemblyError,
    );
    expect(r.pendingCount).toBe(0);
  });

  it('rejects an index out of range and a malformed part', () => {
    const r = new Reassembler();
    expect(() => r.accept({ type: 'part', messageId: 'a', index: 3, count: 3, data: '' })).toThrow(
      ReassemblyError,
    );
    expect(() => r.accept({ type: 'part', messageId: 'a', index: 0 })).toThrow(ReassemblyError);
  });

  it('drops the oldest pending message beyond maxPending', () => {
    const r = new Reassembler({ maxPending: 2 });
    for (const id of ['a', 'b', 'c'])
      r.accept({ type: 'part', messageId: id, index: 0, count: 2, data: 'AA==' });
    expect(r.pendingCount).toBe(2);
    expect(r.dropped).toBe(1);
  });

  it('refuses a message larger than the buffer bound', () => {
    const r = new Reassembler({ maxBufferedBytes: 10 });
    expect(() =>
      r.accept({ type: 'part', messageId: 'a', index: 0, count: 2, data: 'A'.repeat(12) }),
    ).toThrow(/reassembly buffer/);
    expect(r.pendingCount).toBe(0);
  });

  it('drops messages whose parts stop arriving after the timeout', () => {
    let now = 0;
    const r = new Reassembler({ timeoutMs: 1000, now: () => now });
    r.accept({ type: 'part', messageId: 'a', index: 0, count: 2, data: 'AA==' });
    now = 2000;
    r.accept({ type: 'part', messageId: 'b', index: 0, count: 2, data: 'AA==' });
    expect(r.pendingCount).toBe(1);
    expect(r.dropped).toBe(1);
  });

  it('refuses a gzip bomb beyond maxMessageBytes', () => {
    const gz = gzipSync(Buffer.alloc(10 * 1024 * 1024, 32)).toString('base64');
    const half = Math.floor(gz.length / 8) * 4;
    const r = new Reassembler({ maxMessageBytes: 1024 * 1024 });
    r.accept({ type: 'part', messageId: 'bomb', index: 0, count: 2, data: gz.slice(0, half) });
    expect(() =>
      r.accept({ type: 'part', messageId: 'bomb', index: 1, count: 2, data: gz.slice(half) }),
    ).toThrow(/gunzip/);
  });
});

function randomText(length: number): string {
  // Random base64: gzip cannot shrink it much (about 6 bits per byte).
  return randomBytes(Math.ceil(length * 0.75) + 3)
    .toString('base64')
    .slice(0, length);
}

function shuffle<T>(items: T[], seed: number): T[] {
  const a = [...items];
  let x = seed || 1;
  for (let i = a.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const j = x % (i + 1);
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}
