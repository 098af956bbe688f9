// A FIFO of encoded payloads bounded in bytes. Array.shift is O(n), so the queue keeps a
// head index and compacts only when the consumed prefix dominates.

import { assert } from '../assert.js';
import { FRAME_HEADER_BYTES } from './frame-codec.js';

/** Consumed slots tolerated before compaction is considered (amortizes the splice). */
const COMPACT_HEAD_MIN = 1_024;

export class FrameQueue {
  private items: Buffer[] = [];
  private head = 0;
  private bytes = 0;

  constructor(private readonly bytesMax: number) {
    assert(Number.isSafeInteger(bytesMax) && bytesMax > 0, 'FrameQueue bytesMax must be > 0');
  }

  /** Bytes held, counting each frame's header, as the bound is about wire bytes. */
  get queuedBytes(): number {
    return this.bytes;
  }

  get length(): number {
    return this.items.length - this.head;
  }

  /** False (and nothing queued) when the payload would take the queue over its bound. */
  push(payload: Buffer): boolean {
    const cost = payload.length + FRAME_HEADER_BYTES;
    if (this.bytes + cost > this.bytesMax) return false;
    this.items.push(payload);
    this.bytes += cost;
    return true;
  }

  shift(): Buffer | undefined {
    if (this.head >= this.items.length) return undefined;
    const payload = this.items[this.head];
    assert(payload !== undefined, 'queue slot empty below its tail');
    this.items[this.head] = EMPTY;
    this.head++;
    this.bytes -= payload.length + FRAME_HEADER_BYTES;
    assert(this.bytes >= 0, 'queued byte count went negative');
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= COMPACT_HEAD_MIN && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return payload;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.bytes = 0;
  }
}

const EMPTY = Buffer.alloc(0);
