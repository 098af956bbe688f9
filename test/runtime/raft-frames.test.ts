// The Raft host's frames: what every group sends one peer on one lane in one job is one frame;
// every message comes back whole (heartbeats with their own ReadIndex round); the bounds
// split a batch in order; a shape or version the receiver does not know is refused, never
// half-read; the shape before batch frames is still accepted (rolling upgrades).
import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/raft/types.js';
import {
  FramePacker, RAFT_BATCH_VERSION, RAFT_FRAME_MESSAGES_MAX, messageBytesEstimate, packFrame,
  singleFrame, toWireItem, unpackFrame, type RaftBatchFrame,
} from '../../src/runtime/raft-frames.js';
import { decodePayload, encodePayload } from '../../src/transport/frame-codec.js';

const from = 'pod-a';
const to = 'pod-b';
const entry = (index: number, bytes: number) =>
  ({ term: 3, index, type: 'normal' as const, data: new Uint8Array(bytes).fill(7) });

/** One message of every type, from pod-a to pod-b. */
const EVERY_TYPE: Message[] = [
  { type: 'prevote', from, to, term: 4, lastIndex: 9, lastTerm: 3 },
  { type: 'prevoteResp', from, to, term: 4, granted: true },
  { type: 'vote', from, to, term: 4, lastIndex: 9, lastTerm: 3, transfer: false },
  { type: 'voteResp', from, to, term: 4, granted: false },
  { type: 'append', from, to, term: 3, prevIndex: 8, prevTerm: 3, commit: 7,
    entries: [entry(9, 100), entry(10, 0)] },
  { type: 'appendResp', from, to, term: 3, success: true, index: 10, rejectHint: 0 },
  { type: 'heartbeat', from, to, term: 3, commit: 10, readCtx: 42 },
  { type: 'heartbeatResp', from, to, term: 3, readCtx: 42 },
  { type: 'snapshot', from, to, term: 3, offset: 0, totalBytes: 5, done: true,
    chunk: new Uint8Array([1, 2, 3, 4, 5]),
    meta: { index: 10, term: 3, config: { voters: [from, to], learners: [] } } },
  { type: 'snapshotResp', from, to, term: 3, index: 10, nextOffset: 5 },
  { type: 'timeoutNow', from, to, term: 3 },
];

/** What the wire does to a frame: msgpack there and back (Uint8Array comes back a Buffer). */
const overTheWire = (frame: unknown): unknown => decodePayload(encodePayload(frame));

function packAll(msgs: ReadonlyArray<{ to: string; lane: string; g: number; m: Message }>,
  messagesMax?: number, bytesMax?: number): Array<{ to: string; lane: string;
    frame: RaftBatchFrame }> {
  const out: Array<{ to: string; lane: string; frame: RaftBatchFrame }> = [];
  const packer = new FramePacker<string>((t, lane, frame) => out.push({ to: t, lane, frame }),
    messagesMax, bytesMax);
  for (const x of msgs) packer.add(x.to, x.lane, x.g, x.m);
  packer.flush();
  expect(packer.pending).toBe(0);
  return out;
}

describe('raft frames: packing', () => {
  it('every message type comes back whole, with from and to restored from the link', () => {
    const frame = packFrame(EVERY_TYPE.map((m, i) => toWireItem(i, m)));
    const got = unpackFrame(overTheWire(frame), from, to);
    expect(got.ok).toBe(true);
    if (!got.ok) return;
    expect(got.messages.map((x) => x.g)).toEqual(EVERY_TYPE.map((_, i) => i));
    expect(got.messages.map((x) => x.m)).toEqual(overTheWire(EVERY_TYPE));
  });

  it('a heartbeat is (group, term, commit, readCtx) and keeps its own ReadIndex round', () => {
    const beats = [1, 2, 3].map((g): Message =>
      ({ type: 'heartbeat', from, to, term: 5 + g, commit: 100 * g, readCtx: g === 2 ? 0 : g }));
    const frame = packFrame(beats.map((m, i) => toWireItem(10 + i, m)));
    expect(frame.i).toEqual([[10, 'h', 6, 100, 1], [11, 'h', 7, 200, 0], [12, 'h', 8, 300, 3]]);
    const got = unpackFrame(overTheWire(frame), from, to);
    expect(got.ok && got.messages.map((x) => x.m)).toEqual(beats);
  });

  it('one frame per peer and lane, messages in the order the groups sent them', () => {
    const hb = (g: number, peer: string): Message =>
      ({ type: 'heartbeat', from, to: peer, term: 1, commit: g, readCtx: 0 });
    const msgs = [];
    for (let g = 0; g < 64; g++) {
      for (const peer of ['p1', 'p2']) msgs.push({ to: peer, lane: 'control', g, m: hb(g, peer) });
    }
    msgs.push({ to: 'p1', lane: 'bulk', g: 3, m: EVERY_TYPE[4]! });
    const out = packAll(msgs);
    expect(out.map((o) => [o.to, o.lane, o.frame.i.length])).toEqual([
      ['p1', 'control', 64], ['p2', 'control', 64], ['p1', 'bulk', 1]]);
    expect(out[0]!.frame.i.map((item) => item[0])).toEqual([...Array(64).keys()]);
  });

  it('splits beyond the message bound and the byte bound, in order', () => {
    const hb = (g: number): Message => ({ type: 'heartbeat', from, to, term: 1, commit: g,
      readCtx: 0 });
    const many = Array.from({ length: 2 * RAFT_FRAME_MESSAGES_MAX + 5 },
      (_, g) => ({ to, lane: 'control', g, m: hb(g) }));
    const byCount = packAll(many);
    expect(byCount.map((o) => o.frame.i.length))
      .toEqual([RAFT_FRAME_MESSAGES_MAX, RAFT_FRAME_MESSAGES_MAX, 5]);
    expect(byCount.flatMap((o) => o.frame.i.map((item) => item[0])))
      .toEqual(many.map((x) => x.g));

    const append = (g: number, bytes: number): Message => ({ type: 'append', from, to, term: 1,
      prevIndex: 0, prevTerm: 0, commit: 0, entries: [entry(1, bytes)] });
    const big = [0, 1, 2, 3].map((g) => ({ to, lane: 'bulk', g, m: append(g, 400) }));
    const each = messageBytesEstimate(big[0]!.m);
    const byBytes = packAll(big, RAFT_FRAME_MESSAGES_MAX, 2 * each);
    expect(byBytes.map((o) => o.frame.i.map((item) => item[0]))).toEqual([[0, 1], [2, 3]]);
    // One message larger than the bound still goes, alone.
    const huge = packAll([{ to, lane: 'bulk', g: 9, m: append(9, 10_000) }, big[0]!],
      RAFT_FRAME_MESSAGES_MAX, 1000);
    expect(huge.map((o) => o.frame.i.length)).toEqual([1, 1]);
  });
});

describe('raft frames: receiving', () => {
  const hbItem = toWireItem(1, EVERY_TYPE[6]!);

  it('accepts the single-message shape of the version before (rolling upgrade)', () => {
    const m = EVERY_TYPE[6]!;
    const got = unpackFrame(overTheWire({ g: 7, m }), from, to);
    expect(got).toEqual({ ok: true, messages: [{ g: 7, m }], readsBatches: false });
    // A pod of this version says that it reads batches; a batch says so too.
    expect(unpackFrame(overTheWire(singleFrame(7, m)), from, to))
      .toEqual({ ok: true, messages: [{ g: 7, m }], readsBatches: true });
    expect(unpackFrame(packFrame([toWireItem(7, m)]), from, to))
      .toMatchObject({ ok: true, readsBatches: true });
    expect(unpackFrame({ g: 7, m }, 'pod-c', to)).toEqual({ ok: false, reason: 'misaddressed' });
    expect(unpackFrame({ g: 7, m: { ...m, type: 'bogus' } }, from, to))
      .toEqual({ ok: false, reason: 'malformed_message' });
  });

  it('refuses whole a shape or version it does not know', () => {
    const refused = (p: unknown) => {
      const r = unpackFrame(p, from, to);
      return !r.ok && r.reason;
    };
    expect(refused({ rb: RAFT_BATCH_VERSION + 1, i: [hbItem] })).toBe('unknown_version');
    expect(refused({ rc: 1, x: [] })).toBe('unknown_shape');
    expect(refused(['zz', 1, 2])).toBe('unknown_shape');
    expect(refused('heartbeat')).toBe('unknown_shape');
    expect(refused(null)).toBe('unknown_shape');
    expect(refused({ rb: 1, i: [] })).toBe('malformed_message');
    expect(refused({ rb: 1, i: Array(RAFT_FRAME_MESSAGES_MAX + 1).fill(hbItem) }))
      .toBe('too_many_messages');
    // One bad item refuses the frame: nothing of it is delivered.
    for (const bad of [[1, 'h', 3, 10], [1, 'h', -1, 10, 0], [1, 'H', 3], [1, 'x', 1],
      [1.5, 'h', 3, 10, 0], [1, { type: 'nope', term: 1 }], [1, { type: 'vote' }], [1], 'h']) {
      expect(refused({ rb: 1, i: [hbItem, bad] })).toBe('malformed_message');
    }
  });
});
