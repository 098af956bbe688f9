// The pure pieces of the transport: frame reassembly, the bounded queue and backoff bounds,
// checked as properties against naive models.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from '../../src/transport/backoff.js';
import { FrameDecoder, frameHeader, FRAME_HEADER_BYTES } from '../../src/transport/frame-codec.js';
import { FrameQueue } from '../../src/transport/frame-queue.js';
import { tokensEqual } from '../../src/transport/handshake.js';

function encodeFrames(payloads: readonly Uint8Array[]): Buffer {
  return Buffer.concat(payloads.flatMap((p) => [frameHeader(p.length), Buffer.from(p)]));
}

/** Splits `stream` at the given cut points (taken modulo its length). */
function chop(stream: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((x, y) => x - y);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of [...points, stream.length]) {
    chunks.push(stream.subarray(start, point));
    start = point;
  }
  return chunks;
}

describe('FrameDecoder', () => {
  it('reassembles any chunking of any frame sequence', () => {
    fc.assert(fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      (payloads, cuts) => {
        const decoder = new FrameDecoder(1_024);
        const got: Buffer[] = [];
        for (const chunk of chop(encodeFrames(payloads), cuts)) {
          const result = decoder.push(chunk);
          expect(result.ok).toBe(true);
          got.push(...result.frames);
        }
        expect(got.map((f) => Array.from(f))).toEqual(payloads.map((p) => Array.from(p)));
        expect(decoder.buffered).toBe(0);
      },
    ), { numRuns: 200, seed: 7 });
  });

  it('reports a frame over the limit with the frames completed before it', () => {
    const decoder = new FrameDecoder(1_024);
    const stream = Buffer.concat([encodeFrames([Buffer.from('ok')]), frameHeader(1_025)]);
    const result = decoder.push(stream);
    expect(result).toEqual({ ok: false, frames: [Buffer.from('ok')], frameBytes: 1_025 });
    expect(() => decoder.push(Buffer.from([1]))).toThrow(/invariant violated/);
  });

  it('accepts a frame of exactly the limit, and raises its limit when told', () => {
    const decoder = new FrameDecoder(16);
    expect(decoder.push(encodeFrames([new Uint8Array(16)])).frames).toHaveLength(1);
    decoder.setFrameBytesMax(32);
    expect(decoder.push(encodeFrames([new Uint8Array(32)])).frames).toHaveLength(1);
  });

  it('returns at most framesMax frames per push and keeps the rest buffered', () => {
    const decoder = new FrameDecoder(1_024);
    const stream = encodeFrames([Buffer.from('a'), Buffer.from('bb'), Buffer.from('ccc')]);
    expect(decoder.push(stream, 1).frames).toEqual([Buffer.from('a')]);
    expect(decoder.buffered).toBe(stream.length - 5);
    expect(decoder.push(Buffer.alloc(0)).frames).toEqual([Buffer.from('bb'), Buffer.from('ccc')]);
  });
});

describe('FrameQueue', () => {
  it('keeps FIFO order and never exceeds its byte bound (model check)', () => {
    fc.assert(fc.property(
      fc.array(fc.oneof(fc.nat({ max: 200 }), fc.constant(-1)), { maxLength: 3_000 }),
      (ops) => {
        const bytesMax = 2_000;
        const queue = new FrameQueue(bytesMax);
        const model: Buffer[] = [];
        let modelBytes = 0;
        for (const op of ops) {
          if (op < 0) {
            const got = queue.shift();
            expect(got).toBe(model.shift());
            if (got !== undefined) modelBytes -= got.length + FRAME_HEADER_BYTES;
          } else {
            const payload = Buffer.alloc(op);
            const fits = modelBytes + op + FRAME_HEADER_BYTES <= bytesMax;
            expect(queue.push(payload)).toBe(fits);
            if (fits) {
              model.push(payload);
              modelBytes += op + FRAME_HEADER_BYTES;
            }
          }
          expect(queue.queuedBytes).toBe(modelBytes);
          expect(queue.length).toBe(model.length);
        }
      },
    ), { numRuns: 50, seed: 11 });
  });
});

describe('backoffDelayMs', () => {
  it('stays within [min, max] and its range never shrinks as attempts grow', () => {
    fc.assert(fc.property(
      fc.nat({ max: 100 }), fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: 0, max: 60_000 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (attempt, minMs, spreadMs, r) => {
        const maxMs = minMs + spreadMs;
        const delay = backoffDelayMs(attempt, minMs, maxMs, r);
        expect(delay).toBeGreaterThanOrEqual(minMs);
        expect(delay).toBeLessThanOrEqual(maxMs);
        const lowNow = backoffDelayMs(attempt, minMs, maxMs, 0);
        const lowNext = backoffDelayMs(attempt + 1, minMs, maxMs, 0);
        expect(lowNext).toBeGreaterThanOrEqual(lowNow);
      },
    ), { numRuns: 300, seed: 3 });
  });

  it('doubles its ceiling per attempt until max', () => {
    const nearlyOne = 1 - Number.EPSILON;
    expect([0, 1, 2, 3, 10].map((a) => backoffDelayMs(a, 100, 1_000, nearlyOne)))
      .toEqual([100, 200, 400, 800, 1_000]);
    expect(backoffDelayMs(0, 100, 1_000, 0)).toBe(100);
    expect(backoffDelayMs(3, 100, 1_000, 0)).toBe(400);
  });
});

describe('tokensEqual', () => {
  it('matches only identical tokens, whatever their lengths', () => {
    expect(tokensEqual('s3cret', 's3cret')).toBe(true);
    expect(tokensEqual('s3cret', 's3cres')).toBe(false);
    expect(tokensEqual('s3cret', 's3cret-longer')).toBe(false);
    expect(tokensEqual('', 'x')).toBe(false);
  });
});
