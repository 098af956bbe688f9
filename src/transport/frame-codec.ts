// Length-prefixed frames on a byte stream: a u32 big-endian payload length, then the
// payload. The decoder is a small pure state machine fed with socket chunks, so a frame
// split over many chunks (or many frames in one chunk) costs no more than one copy.

import { Packr } from 'msgpackr';
import { assert } from '../assert.js';

export const FRAME_HEADER_BYTES = 4;
/** The u32 prefix cannot describe more; any configured limit must stay below it. */
export const FRAME_BYTES_LIMIT = 0xffff_ffff;

// useRecords: false keeps the encoding self-describing (no shared structure table between
// the two ends of a connection), so any frame decodes on its own and a reconnect needs no
// state. Uint8Array values are encoded as msgpack bin and come back as Buffers.
const packr = new Packr({ useRecords: false });

export function encodePayload(value: unknown): Buffer {
  return packr.pack(value);
}

/** Throws on bytes that are not exactly one msgpack value (the caller closes the link). */
export function decodePayload(bytes: Buffer): unknown {
  return packr.unpack(bytes);
}

export function frameHeader(payloadBytes: number): Buffer {
  assert(Number.isSafeInteger(payloadBytes) && payloadBytes >= 0 &&
    payloadBytes <= FRAME_BYTES_LIMIT, () => `frame length ${payloadBytes} out of range`);
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32BE(payloadBytes, 0);
  return header;
}

export type DecodeResult =
  | { readonly ok: true; readonly frames: Buffer[] }
  | { readonly ok: false; readonly frames: Buffer[]; readonly frameBytes: number };

/**
 * Reassembles frames from chunks. Once a frame announces more than `frameBytesMax` the
 * decoder reports it (with the frames completed before it) and must not be fed again:
 * the stream can no longer be trusted and the connection is closed.
 */
export class FrameDecoder {
  private readonly chunks: Buffer[] = [];
  private bufferedBytes = 0;
  /** Payload length of the frame being assembled, or -1 while its header is incomplete. */
  private pendingFrameBytes = -1;
  private failed = false;

  constructor(private frameBytesMax: number) {
    assert(Number.isSafeInteger(frameBytesMax) && frameBytesMax > 0 &&
      frameBytesMax <= FRAME_BYTES_LIMIT, 'frameBytesMax out of range');
  }

  /** A connection may start with a small limit (handshake) and raise it once trusted. */
  setFrameBytesMax(frameBytesMax: number): void {
    assert(frameBytesMax > 0 && frameBytesMax <= FRAME_BYTES_LIMIT, 'frameBytesMax out of range');
    this.frameBytesMax = frameBytesMax;
  }

  /** Bytes received but not yet returned as frames. */
  get buffered(): number {
    return this.bufferedBytes;
  }

  /** Adds a chunk (may be empty) and returns the frames it completes, at most `framesMax`
   * of them: the rest stays buffered for the next push, so a caller can change the limit
   * between frames (the handshake frame is held to a smaller limit than the ones after). */
  push(chunk: Buffer, framesMax = Number.POSITIVE_INFINITY): DecodeResult {
    assert(!this.failed, 'FrameDecoder fed after it reported an oversized frame');
    assert(framesMax >= 1, 'framesMax must be at least 1');
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.bufferedBytes += chunk.length;
    }
    const frames: Buffer[] = [];
    while (frames.length < framesMax) {
      if (this.pendingFrameBytes < 0) {
        if (this.bufferedBytes < FRAME_HEADER_BYTES) break;
        const length = this.take(FRAME_HEADER_BYTES).readUInt32BE(0);
        if (length > this.frameBytesMax) {
          this.failed = true;
          return { ok: false, frames, frameBytes: length };
        }
        this.pendingFrameBytes = length;
      }
      if (this.bufferedBytes < this.pendingFrameBytes) break;
      frames.push(this.take(this.pendingFrameBytes));
      this.pendingFrameBytes = -1;
    }
    return { ok: true, frames };
  }

  /** Removes exactly `n` buffered bytes from the front, copying only when they span chunks. */
  private take(n: number): Buffer {
    assert(n <= this.bufferedBytes, 'take beyond buffered bytes');
    this.bufferedBytes -= n;
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0];
      assert(chunk !== undefined, 'buffered byte count out of step with chunks');
      const used = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, used);
      filled += used;
      if (used === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(used);
    }
    return out;
  }
}
