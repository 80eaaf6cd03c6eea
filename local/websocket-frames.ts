/**
 * API Gateway's WebSocket frame limit as the emulator enforces it: a client frame carries at most 32 KB
 * of payload (a larger message must be split into several frames, 128 KB in all), and a bigger frame
 * closes the connection with 1009 (API Gateway quotas, "WebSocket frame size"). The `ws` server only
 * bounds whole messages, so the emulator reads the frame headers of the raw byte stream itself.
 */

/** Largest payload of one WebSocket frame a client may send to API Gateway (32 KB). */
export const MAX_CLIENT_FRAME_BYTES = 32 * 1024;

interface FrameHeader {
  readonly headerBytes: number;
  readonly payloadBytes: number;
  readonly opcode: number;
}

/** Parses a frame header (RFC 6455 §5.2) from its first bytes; undefined while it is incomplete. */
function parseHeader(bytes: Buffer): FrameHeader | undefined {
  if (bytes.length < 2) return undefined;
  const length7 = (bytes[1] as number) & 0x7f;
  const extended = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
  const masked = ((bytes[1] as number) & 0x80) !== 0;
  const headerBytes = 2 + extended + (masked ? 4 : 0);
  if (bytes.length < headerBytes) return undefined;
  const payloadBytes =
    length7 === 126 ? bytes.readUInt16BE(2) : length7 === 127 ? Number(bytes.readBigUInt64BE(2)) : length7;
  return { headerBytes, payloadBytes, opcode: (bytes[0] as number) & 0x0f };
}

/**
 * Follows the frames of a client's byte stream chunk by chunk (headers may be cut across chunks) and
 * reports the first data frame whose payload exceeds `maxFrameBytes`.
 */
export class FrameSizeGuard {
  private header: Buffer = Buffer.alloc(0);
  private remaining = 0;

  constructor(private readonly maxFrameBytes: number = MAX_CLIENT_FRAME_BYTES) {}

  /** Feeds received bytes; returns the payload size of a frame over the limit, else undefined. */
  push(chunk: Buffer): number | undefined {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining > 0) {
        const skipped = Math.min(this.remaining, chunk.length - offset);
        this.remaining -= skipped;
        offset += skipped;
        continue;
      }
      const pending = this.header.length;
      const candidate = Buffer.concat([this.header, chunk.subarray(offset, offset + 14 - pending)]);
      const header = parseHeader(candidate);
      if (!header) {
        this.header = candidate;
        offset = chunk.length;
        continue;
      }
      offset += header.headerBytes - pending;
      this.header = Buffer.alloc(0);
      // Control frames (close, ping, pong: opcodes 8-10) are capped at 125 bytes by the protocol itself.
      if (header.opcode < 8 && header.payloadBytes > this.maxFrameBytes) return header.payloadBytes;
      this.remaining = header.payloadBytes;
    }
    return undefined;
  }
}
