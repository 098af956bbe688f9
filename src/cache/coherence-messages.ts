// The vocabulary of the cache coherence protocol: line states, the messages pods exchange,
// the effects the core asks its shell to perform and the results of client operations.
// Everything is plain data so the transport can encode it (msgpack) and tests can compare it.

import type { DsyncError } from '../errors.js';

export type NodeId = string;

/** MESI state of a line in one pod. M: the only copy, maybe newer than memory; E: the only
 * copy, equal to memory; S: one of possibly many read-only copies; I: no usable copy. */
export type LineState = 'M' | 'E' | 'S' | 'I';
export type GrantState = 'M' | 'E' | 'S';

/** A cached value: the JSON text of the user's value, or null for "no value" (never written
 * or deleted), which the HTTP layer maps to 404. */
export type CacheValue = string | null;

/** Dirty data handed back to the home: on a recall, an invalidation or a write-back. */
export interface LineData {
  readonly value: CacheValue;
  readonly version: number;
}

/** Every message names its key and both incarnations: `fromInc` is the sender's own, `toInc`
 * the receiver's as the sender last heard it (0 = not known yet). Incarnations let a pod drop
 * messages from, and copies granted by, an earlier life of a peer. */
interface MsgBase {
  readonly key: string;
  readonly fromInc: number;
  readonly toInc: number;
}

/** Sequence numbers come from one counter per home incarnation, so they increase per key and
 * a cache can tell an invalidation that was issued after a grant from one issued before. */
export type CoherenceMsg =
  // cache → home: ask for a readable (S, or E when nobody else has it) or writable copy.
  // `txn` is the cache's transaction number; the grant echoes it.
  | (MsgBase & { readonly type: 'getS'; readonly txn: number })
  | (MsgBase & { readonly type: 'getM'; readonly txn: number })
  // home → cache: a copy with the grant's sequence number and lease length.
  | (MsgBase & {
      readonly type: 'data';
      readonly txn: number;
      readonly grant: GrantState;
      readonly seq: number;
      readonly value: CacheValue;
      readonly version: number;
      readonly leaseMs: number;
    })
  // home → cache: the request was refused (queue or directory full: RESOURCE_EXHAUSTED; the
  // home is shutting down: UNAVAILABLE); the cache fails the waiting operations.
  // `cause` 'store_unavailable': the home needs the backing store for this request and knows
  // it is down; the cache answers at once, naming the store rather than the home.
  | (MsgBase & {
      readonly type: 'nack';
      readonly txn: number;
      readonly code: 'RESOURCE_EXHAUSTED' | 'UNAVAILABLE';
      readonly reason: string;
      readonly cause?: NackCause;
    })
  // home → sharer: drop every copy granted before `seq`.
  | (MsgBase & { readonly type: 'inv'; readonly seq: number })
  // home → owner: another pod reads (downgrade to S) or writes (drop); send the data back.
  | (MsgBase & { readonly type: 'fwdGetS'; readonly seq: number })
  | (MsgBase & { readonly type: 'fwdGetM'; readonly seq: number })
  // cache → home: answers to inv and to the recalls, with dirty data when the pod had some;
  // `kept` says the pod still holds an S copy after a fwdGetS.
  | (MsgBase & { readonly type: 'invAck'; readonly seq: number; readonly data: LineData | null })
  | (MsgBase & {
      readonly type: 'recallAck';
      readonly seq: number;
      readonly data: LineData | null;
      readonly kept: boolean;
    })
  // cache → home: write-back of dirty data (eviction when !retain, flush when retain). `seq`
  // and `homeInc` name the grant the data was held under; resent until putAck.
  | (MsgBase & {
      readonly type: 'putM';
      readonly seq: number;
      readonly homeInc: number;
      readonly value: CacheValue;
      readonly version: number;
      readonly retain: boolean;
    })
  // cache → home: a clean copy was evicted (best effort, never acknowledged).
  | (MsgBase & { readonly type: 'putE' | 'putS'; readonly seq: number; readonly homeInc: number })
  // home → cache: the backing store holds `version` (or newer) of the key.
  | (MsgBase & { readonly type: 'putAck'; readonly version: number })
  // home → every peer while a new incarnation waits out its start-up grace (key ''): "I am
  // incarnation fromInc". A peer that hears of a newer incarnation drops the copies the
  // earlier one granted and hands their dirty data to the new one.
  | (MsgBase & { readonly type: 'hello' })
  // peer → home (key ''): `clear` when the peer holds no copy granted by, and no write-back
  // unacknowledged by, an earlier life of the home. Once every peer is clear, grace ends.
  | (MsgBase & { readonly type: 'helloAck'; readonly clear: boolean });

export type NackCause = 'store_unavailable';

export type CoherenceMsgType = CoherenceMsg['type'];

export type OpResult =
  | {
      readonly type: 'read';
      readonly key: string;
      readonly value: CacheValue;
      readonly state: GrantState;
      readonly hit: boolean;
      readonly version: number;
    }
  | { readonly type: 'write'; readonly key: string; readonly state: 'M'; readonly version: number }
  | {
      readonly type: 'delete';
      readonly key: string;
      readonly deleted: boolean;
      readonly version: number;
    }
  | { readonly type: 'error'; readonly key: string; readonly error: DsyncError };

/** What the shell must do. Store effects are only ever emitted by a key's home; a shell
 * applies the storeWrites of one key in the order they were emitted and reports each with
 * storeWritten, and answers every storeLoad with storeLoaded (retrying failures itself). */
export type CoherenceEffect =
  | { readonly type: 'send'; readonly to: NodeId; readonly msg: CoherenceMsg }
  | { readonly type: 'reply'; readonly reqId: string; readonly result: OpResult }
  | { readonly type: 'storeLoad'; readonly key: string }
  | {
      readonly type: 'storeWrite';
      readonly key: string;
      readonly value: CacheValue;
      readonly version: number;
    };

/** One readable line for logs and golden tests. */
export function describeMsg(msg: CoherenceMsg): string {
  const head = `${msg.type} ${JSON.stringify(msg.key)} inc ${msg.fromInc}→${msg.toInc}`;
  switch (msg.type) {
    case 'getS':
    case 'getM':
    case 'nack':
      return `${head} txn ${msg.txn}` + (msg.type === 'nack'
        ? ` ${msg.code} (${msg.reason})${msg.cause === undefined ? '' : ` ${msg.cause}`}` : '');
    case 'data':
      return `${head} txn ${msg.txn} grant ${msg.grant} seq ${msg.seq} v${msg.version} ` +
        `lease ${msg.leaseMs}ms ${describeValue(msg.value)}`;
    case 'inv':
    case 'fwdGetS':
    case 'fwdGetM':
      return `${head} seq ${msg.seq}`;
    case 'invAck':
    case 'recallAck':
      return `${head} seq ${msg.seq} ` +
        (msg.data === null ? 'no data' : `v${msg.data.version} ${describeValue(msg.data.value)}`) +
        (msg.type === 'recallAck' && msg.kept ? ' kept S' : '');
    case 'putM':
      return `${head} seq ${msg.seq}@${msg.homeInc} v${msg.version} ` +
        `${describeValue(msg.value)}${msg.retain ? ' retain' : ''}`;
    case 'putE':
    case 'putS':
      return `${head} seq ${msg.seq}@${msg.homeInc}`;
    case 'putAck':
      return `${head} v${msg.version}`;
    case 'hello':
      return head;
    case 'helloAck':
      return `${head} ${msg.clear ? 'clear' : 'not clear'}`;
  }
}

export function describeEffect(effect: CoherenceEffect): string {
  switch (effect.type) {
    case 'send':
      return `send ${effect.to}: ${describeMsg(effect.msg)}`;
    case 'reply': {
      const r = effect.result;
      const body = r.type === 'error' ? `error ${r.error.code}` : r.type === 'read'
        ? `read ${r.state}${r.hit ? ' hit' : ' miss'} v${r.version} ${describeValue(r.value)}`
        : r.type === 'write' ? `write v${r.version}` : `delete ${r.deleted} v${r.version}`;
      return `reply ${effect.reqId} ${JSON.stringify(r.key)}: ${body}`;
    }
    case 'storeLoad':
      return `storeLoad ${JSON.stringify(effect.key)}`;
    case 'storeWrite':
      return `storeWrite ${JSON.stringify(effect.key)} v${effect.version} ` +
        describeValue(effect.value);
  }
}

function describeValue(value: CacheValue): string {
  if (value === null) return '∅';
  return value.length <= 24 ? value : `${value.slice(0, 21)}…(${value.length})`;
}
