// The wire shape of the Raft host's frames. Every message that the groups of this node send to
// one peer on one lane within one event-loop job travels in one frame, so the frames per pod
// pair stay the same whether the pod hosts 1 group or 64 (a tick's heartbeats of every group
// this node leads, the answers to them, a turn's appends of every partition):
//
//   { rb: 1, i: [item, ...] }   items in the order the groups sent them, one lane per frame
//     [g, 'h', term, commit, readCtx]    a heartbeat (each keeps its own ReadIndex round)
//     [g, 'H', term, readCtx]            its answer
//     [g, message]                       any other message, without `from` and `to`
//
// `from` and `to` are the two ends of the connection: the receiver puts them back.
//
// Mixed versions: the shape before this one, { g, m } with one whole message per frame, is
// still accepted, and still sent to a peer until that peer shows it reads batches: a pod of
// this version sends { g, m, b: 1 } (`b`: the batch version it reads; the version before
// ignores the field) until it has received a batch or a `b` from the peer, and goes back to
// it when its link to the peer closes (the peer may come back on another version). So a
// rolling upgrade (or a roll back) works pod by pod. Anything else (a newer version, a shape
// not known here) is refused whole, never half-read.
import { assert } from '../assert.js';
import type { Message, MessageType } from '../raft/types.js';

/** The version of the batch shape, the value of its `rb` tag. */
export const RAFT_BATCH_VERSION = 1;
/** Messages in one frame at most: a sender starts a new frame beyond it, a receiver refuses
 * a frame with more. */
export const RAFT_FRAME_MESSAGES_MAX = 1024;
/** Estimated payload bytes in one frame before the sender starts a new one (one larger
 * message still goes, alone). Well below every transport's frameBytesMax (32 MiB for locks
 * and queues), so that a frame holding many groups' appends is never refused as too large. */
export const RAFT_FRAME_BYTES_MAX = 1024 * 1024;

type Stripped<T> = T extends unknown ? Omit<T, 'from' | 'to'> : never;
export type WireMessage = Stripped<Message>;

export type WireItem =
  | readonly [group: number, kind: 'h', term: number, commit: number, readCtx: number]
  | readonly [group: number, kind: 'H', term: number, readCtx: number]
  | readonly [group: number, message: WireMessage];

/** A frame of the shape before batches, with the batch version this node reads. */
export interface SingleFrame {
  readonly g: number;
  readonly m: Message;
  readonly b: typeof RAFT_BATCH_VERSION;
}

export interface RaftBatchFrame {
  readonly rb: typeof RAFT_BATCH_VERSION;
  readonly i: readonly WireItem[];
}

/** A message for one group, as delivered to it. */
export interface GroupMessage {
  readonly g: number;
  readonly m: Message;
}

export type RefusalReason = 'unknown_shape' | 'unknown_version' | 'too_many_messages' |
  'malformed_message' | 'misaddressed';

export type Unpacked =
  | { readonly ok: true; readonly messages: readonly GroupMessage[];
      /** The sender reads batch frames (it sent one, or said so). */
      readonly readsBatches: boolean }
  | { readonly ok: false; readonly reason: RefusalReason };

const MESSAGE_TYPES: ReadonlySet<unknown> = new Set<MessageType>([
  'prevote', 'prevoteResp', 'vote', 'voteResp', 'append', 'appendResp', 'heartbeat',
  'heartbeatResp', 'snapshot', 'snapshotResp', 'timeoutNow',
]);

/** Bytes of framing and fixed fields of a message, roughly (msgpack of a small map). */
const MESSAGE_OVERHEAD_BYTES = 48;
const ENTRY_OVERHEAD_BYTES = 16;
const HEARTBEAT_ITEM_BYTES = 16;

/** The bytes a message adds to a frame, estimated from what it carries: a bound, not a size. */
export function messageBytesEstimate(m: Message): number {
  switch (m.type) {
    case 'heartbeat':
    case 'heartbeatResp':
      return HEARTBEAT_ITEM_BYTES;
    case 'append': {
      let bytes = MESSAGE_OVERHEAD_BYTES;
      for (const e of m.entries) bytes += ENTRY_OVERHEAD_BYTES + e.data.byteLength;
      return bytes;
    }
    case 'snapshot': {
      const ids = [...m.meta.config.voters, ...m.meta.config.learners];
      return MESSAGE_OVERHEAD_BYTES * 2 + m.chunk.byteLength +
        ids.reduce((n, id) => n + id.length + 2, 0);
    }
    default:
      return MESSAGE_OVERHEAD_BYTES;
  }
}

export function toWireItem(g: number, m: Message): WireItem {
  if (m.type === 'heartbeat') return [g, 'h', m.term, m.commit, m.readCtx];
  if (m.type === 'heartbeatResp') return [g, 'H', m.term, m.readCtx];
  const { from: _from, to: _to, ...rest } = m;
  return [g, rest];
}

export function packFrame(items: readonly WireItem[]): RaftBatchFrame {
  assert(items.length > 0 && items.length <= RAFT_FRAME_MESSAGES_MAX,
    () => `a raft frame holds 1..${RAFT_FRAME_MESSAGES_MAX} messages, not ${items.length}`);
  return { rb: RAFT_BATCH_VERSION, i: items };
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function fromWireItem(item: unknown, from: string, to: string): Message | null {
  if (!Array.isArray(item) || !Number.isSafeInteger(item[0])) return null;
  const kind: unknown = item[1];
  if (kind === 'h') {
    const [, , term, commit, readCtx] = item as unknown[];
    if (item.length !== 5 || !isCount(term) || !isCount(commit) || !isCount(readCtx)) return null;
    return { type: 'heartbeat', from, to, term, commit, readCtx };
  }
  if (kind === 'H') {
    const [, , term, readCtx] = item as unknown[];
    if (item.length !== 4 || !isCount(term) || !isCount(readCtx)) return null;
    return { type: 'heartbeatResp', from, to, term, readCtx };
  }
  if (item.length !== 2 || typeof kind !== 'object' || kind === null) return null;
  const m = kind as { type?: unknown; term?: unknown };
  if (!MESSAGE_TYPES.has(m.type) || !isCount(m.term)) return null;
  return { ...(m as WireMessage), from, to };
}

/** The shape before batch frames: one whole message per frame. */
function unpackSingle(p: { g?: unknown; m?: unknown; b?: unknown }, from: string, to: string):
  Unpacked {
  const m = p.m as { type?: unknown; to?: unknown; from?: unknown; term?: unknown } | null;
  if (!Number.isSafeInteger(p.g) || typeof m !== 'object' || m === null ||
      !MESSAGE_TYPES.has(m.type) || typeof m.term !== 'number') {
    return { ok: false, reason: 'malformed_message' };
  }
  if (m.to !== to || m.from !== from) return { ok: false, reason: 'misaddressed' };
  const readsBatches = Number.isSafeInteger(p.b) && (p.b as number) >= RAFT_BATCH_VERSION;
  return { ok: true, messages: [{ g: p.g as number, m: p.m as Message }], readsBatches };
}

/**
 * The messages of a frame that `from` sent to `to` (this node), or why the frame is refused:
 * a frame is delivered whole or not at all. Peer-request frames are not Raft frames: the
 * caller skips them before (isPeerRequestFrame).
 */
export function unpackFrame(payload: unknown, from: string, to: string): Unpacked {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    return { ok: false, reason: 'unknown_shape' };
  }
  const p = payload as { rb?: unknown; i?: unknown; g?: unknown; m?: unknown; b?: unknown };
  if (p.rb === undefined) {
    if (p.g !== undefined && p.m !== undefined) return unpackSingle(p, from, to);
    return { ok: false, reason: 'unknown_shape' };
  }
  if (p.rb !== RAFT_BATCH_VERSION) return { ok: false, reason: 'unknown_version' };
  if (!Array.isArray(p.i) || p.i.length === 0) return { ok: false, reason: 'malformed_message' };
  if (p.i.length > RAFT_FRAME_MESSAGES_MAX) return { ok: false, reason: 'too_many_messages' };
  const messages: GroupMessage[] = [];
  for (const item of p.i as unknown[]) {
    const m = fromWireItem(item, from, to);
    if (m === null) return { ok: false, reason: 'malformed_message' };
    messages.push({ g: (item as unknown[])[0] as number, m });
  }
  return { ok: true, messages, readsBatches: true };
}

/** A message in the shape before batches, for a peer not known to read them. */
export function singleFrame(g: number, m: Message): SingleFrame {
  return { g, m, b: RAFT_BATCH_VERSION };
}

interface Open<L extends string> {
  readonly to: string;
  readonly lane: L;
  items: WireItem[];
  bytes: number;
}

/**
 * Gathers the messages for each (peer, lane) until flush(), and hands each batch to `emit` as
 * one frame; a batch that reaches RAFT_FRAME_MESSAGES_MAX or RAFT_FRAME_BYTES_MAX goes out at
 * once and a new one begins, so the order of the messages on a lane is kept.
 */
export class FramePacker<L extends string> {
  private readonly open = new Map<string, Open<L>>();

  constructor(
    private readonly emit: (to: string, lane: L, frame: RaftBatchFrame) => void,
    private readonly messagesMax = RAFT_FRAME_MESSAGES_MAX,
    private readonly bytesMax = RAFT_FRAME_BYTES_MAX,
  ) {
    assert(messagesMax >= 1 && messagesMax <= RAFT_FRAME_MESSAGES_MAX, 'messagesMax out of range');
    assert(bytesMax >= 1, 'bytesMax out of range');
  }

  /** Messages waiting for flush(). */
  get pending(): number {
    let n = 0;
    for (const o of this.open.values()) n += o.items.length;
    return n;
  }

  add(to: string, lane: L, g: number, m: Message): void {
    const key = `${lane}\u0000${to}`;
    let o = this.open.get(key);
    if (o === undefined) {
      o = { to, lane, items: [], bytes: 0 };
      this.open.set(key, o);
    }
    const bytes = messageBytesEstimate(m);
    if (o.items.length > 0 &&
        (o.items.length >= this.messagesMax || o.bytes + bytes > this.bytesMax)) {
      this.emitOpen(o);
    }
    o.items.push(toWireItem(g, m));
    o.bytes += bytes;
  }

  /** Emits every batch gathered, in the order their first message arrived. */
  flush(): void {
    const batches = [...this.open.values()];
    this.open.clear();
    for (const o of batches) if (o.items.length > 0) this.emitOpen(o);
  }

  private emitOpen(o: Open<L>): void {
    const items = o.items;
    o.items = [];
    o.bytes = 0;
    this.emit(o.to, o.lane, packFrame(items));
  }
}
