/**
 * Framing over API Gateway's 128 KB message limit. A message whose JSON fits the budget
 * ({@link MESSAGE_BUDGET_BYTES}, a safety margin under the limit) is sent as one message. A larger one is
 * gzip'ed, the gzip bytes are cut into slices, and each slice travels as
 * `{ type: 'part', messageId, index, count, data: base64(slice) }`, every part within the budget.
 * The receiving side (`Reassembler`) joins the slices in index order and gunzips them.
 */
import { randomUUID } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { formatIssues } from '../config/load.js';
import { type Part, PartSchema } from './protocol.js';

/**
 * The largest message the relay posts: 120 KiB, 8 KiB under API Gateway's 128 KB whether "KB" is read as
 * 1,024 or 1,000 bytes (122,880 < 128,000), so a part never meets the limit itself.
 */
export const MESSAGE_BUDGET_BYTES = 120 * 1024;

export interface EncodeOptions {
  /** Largest message in UTF-8 bytes (default {@link MESSAGE_BUDGET_BYTES}). */
  readonly maxBytes?: number;
  /** Id of the parts of a split message (default a random UUID). */
  readonly messageId?: string;
}

/** The longest index/count the envelope must accommodate (PartSchema caps count at 10 000). */
const MAX_COUNT_DIGITS = 5;

/**
 * Serialises one message into the frames to post: `[json]` when it fits, else its parts. Every frame's
 * UTF-8 size is at most `maxBytes`.
 */
export function encodeMessage(message: unknown, options: EncodeOptions = {}): string[] {
  const json = JSON.stringify(message);
  return encodeText(json, options);
}

/** As {@link encodeMessage}, for an already serialised message. */
export function encodeText(json: string, options: EncodeOptions = {}): string[] {
  const maxBytes = options.maxBytes ?? MESSAGE_BUDGET_BYTES;
  if (Buffer.byteLength(json, 'utf8') <= maxBytes) return [json];
  const messageId = options.messageId ?? randomUUID();
  const gzip = gzipSync(Buffer.from(json, 'utf8'));
  const sliceBytes = partSliceBytes(messageId, maxBytes);
  const count = Math.max(2, Math.ceil(gzip.length / sliceBytes));
  if (count > 10_000) throw new RangeError(`Message too large to split: ${gzip.length} gzip bytes`);
  const frames: string[] = [];
  for (let index = 0; index < count; index++) {
    const slice = gzip.subarray(index * sliceBytes, (index + 1) * sliceBytes);
    const part: Part = { type: 'part', messageId, index, count, data: slice.toString('base64') };
    frames.push(JSON.stringify(part));
  }
  return frames;
}

/** Raw bytes per slice so that the part's JSON (base64 data, widest index/count) fits `maxBytes`. */
export function partSliceBytes(messageId: string, maxBytes: number): number {
  const widest = '9'.repeat(MAX_COUNT_DIGITS);
  const envelope = JSON.stringify({ type: 'part', messageId, index: widest, count: widest, data: '' });
  // Quotes around the numbers in the template are two bytes per number the real JSON will not have.
  const available = maxBytes - Buffer.byteLength(envelope, 'utf8');
  const slice = Math.floor(available / 4) * 3;
  if (slice < 3) throw new RangeError(`maxBytes ${maxBytes} leaves no room for data in a part`);
  return slice;
}

export interface ReassemblerOptions {
  /** Messages being reassembled at once; the oldest is dropped beyond it (default 16). */
  readonly maxPending?: number;
  /** Base64 bytes held across pending messages; the oldest are dropped beyond it (default 64 MB). */
  readonly maxBufferedBytes?: number;
  /** Largest reassembled (gunzipped) message in bytes (default 64 MB): bounds a gzip bomb. */
  readonly maxMessageBytes?: number;
  /** Pending messages older than this are dropped (default 5 minutes). */
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

interface Pending {
  readonly count: number;
  readonly slices: (string | undefined)[];
  received: number;
  bytes: number;
  readonly startedAt: number;
}

/** Why a part was refused or a message discarded. */
export class ReassemblyError extends Error {
  override readonly name = 'ReassemblyError';
}

/**
 * Client side of the framing. Feed it every parsed part; it returns the reassembled JSON text when a
 * message's last part arrives. Parts of several messages may interleave, and parts of one message may
 * arrive out of order. Memory is bounded by `maxPending`, `maxBufferedBytes` and `timeoutMs`.
 */
export class Reassembler {
  private readonly pending = new Map<string, Pending>();
  private bufferedBytes = 0;
  private readonly maxPending: number;
  private readonly maxBufferedBytes: number;
  private readonly maxMessageBytes: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  /** Messages dropped to honour the bounds (timeouts, eviction). */
  dropped = 0;

  constructor(options: ReassemblerOptions = {}) {
    this.maxPending = options.maxPending ?? 16;
    this.maxBufferedBytes = options.maxBufferedBytes ?? 64 * 1024 * 1024;
    this.maxMessageBytes = options.maxMessageBytes ?? 64 * 1024 * 1024;
    this.timeoutMs = options.timeoutMs ?? 5 * 60_000;
    this.now = options.now ?? Date.now;
  }

  /** Number of messages waiting for parts. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Accepts one part. Returns the whole message's JSON text when this part completes it, undefined
   * while parts are missing. Throws ReassemblyError for a malformed or inconsistent part (the
   * message it belongs to is discarded).
   */
  accept(input: unknown): string | undefined {
    const parsed = PartSchema.safeParse(input);
    if (!parsed.success)
      throw new ReassemblyError(`Malformed part: ${formatIssues(parsed.error, '', { received: false })}`);
    const part = parsed.data;
    this.expire();
    let entry = this.pending.get(part.messageId);
    if (!entry) {
      entry = {
        count: part.count,
        slices: new Array(part.count),
        received: 0,
        bytes: 0,
        startedAt: this.now(),
      };
      this.pending.set(part.messageId, entry);
    }
    if (part.count !== entry.count || part.index >= entry.count) {
      this.discard(part.messageId);
      throw new ReassemblyError(
        `Inconsistent part ${part.index}/${part.count} of message ${part.messageId} (expected count ${entry.count})`,
      );
    }
    if (entry.slices[part.index] === undefined) {
      entry.slices[part.index] = part.data;
      entry.received++;
      entry.bytes += part.data.length;
      this.bufferedBytes += part.data.length;
    }
    if (entry.received === entry.count) {
      this.discard(part.messageId);
      const gzip = Buffer.concat(entry.slices.map((s) => Buffer.from(s as string, 'base64')));
      try {
        return gunzipSync(gzip, { maxOutputLength: this.maxMessageBytes }).toString('utf8');
      } catch (cause) {
        throw new ReassemblyError(`Cannot gunzip message ${part.messageId}: ${(cause as Error).message}`);
      }
    }
    this.enforceBounds(part.messageId);
    return undefined;
  }

  private discard(messageId: string): void {
    const entry = this.pending.get(messageId);
    if (!entry) return;
    this.bufferedBytes -= entry.bytes;
    this.pending.delete(messageId);
  }

  private expire(): void {
    const cutoff = this.now() - this.timeoutMs;
    for (const [id, entry] of this.pending) {
      if (entry.startedAt < cutoff) {
        this.discard(id);
        this.dropped++;
      }
    }
  }

  /** Drops the oldest pending messages (Map order = arrival order) until within bounds, keeping `current`. */
  private enforceBounds(current: string): void {
    for (const id of [...this.pending.keys()]) {
      if (this.pending.size <= this.maxPending && this.bufferedBytes <= this.maxBufferedBytes) return;
      if (id === current) continue;
      this.discard(id);
      this.dropped++;
    }
    if (this.bufferedBytes > this.maxBufferedBytes) {
      this.discard(current);
      this.dropped++;
      throw new ReassemblyError(
        `Message ${current} exceeds the reassembly buffer of ${this.maxBufferedBytes} bytes`,
      );
    }
  }
}

/**
 * Decodes one received frame: a whole message is returned parsed; a part is fed to `reassembler` and
 * the message it completes (if any) is returned parsed.
 */
export function decodeFrame(frame: string, reassembler: Reassembler): unknown | undefined {
  const json = JSON.parse(frame) as { type?: unknown };
  if (json && typeof json === 'object' && json.type === 'part') {
    const text = reassembler.accept(json);
    return text === undefined ? undefined : JSON.parse(text);
  }
  return json;
}
