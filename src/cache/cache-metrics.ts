// Prometheus series of a cache node. Counts the core keeps (hits, misses, evictions, lines per
// state) are read from its stats() at scrape time, so the hot path pays nothing for them;
// message counts and latencies are observed by the shell as it carries effects out.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS_SECONDS } from '../observability/metrics.js';
import type { CacheStats } from './coherence.js';
import type { CoherenceMsgType } from './coherence-messages.js';
import { createStoreLatency } from './store.js';

export interface CacheMetrics {
  /** Coherence messages by direction (sent | received) and type. */
  readonly messages: Counter<'direction' | 'type'>;
  readonly invalidationsSent: Counter;
  readonly invalidationsReceived: Counter;
  /** Owner recalls (fwdGetS, fwdGetM) this node sent as a home. */
  readonly recalls: Counter;
  /** Dirty data sent home by this node (putM), and versions this node wrote to the store. */
  readonly writebacksSent: Counter;
  readonly storeWrites: Counter<'outcome'>;
  readonly storeLatency: Histogram<'store' | 'op'>;
  /** From a getS/getM to a remote home until its data or nack, by request type. */
  readonly coherenceLatency: Histogram<'type'>;
  /** Client operations through this node: op read|write|delete, result hit|miss|error. */
  readonly opLatency: Histogram<'op' | 'result'>;
  readonly peerMessagesDropped: Counter;
  /** 1 while the backing store serves, 0 while this node knows it is down. */
  readonly storeUp: Gauge;
}

export function createCacheMetrics(registry: Registry, stats: () => CacheStats): CacheMetrics {
  const registers = [registry];
  let seen = { hits: 0, misses: 0, evictions: 0 };
  // Counters fed from the core's totals at scrape time.
  const fromStats = (name: string, help: string, pick: (s: CacheStats) => number,
    field: keyof typeof seen): void => {
    new Counter({ name, help, registers, collect() {
      const now = pick(stats());
      if (now > seen[field]) this.inc(now - seen[field]);
      seen = { ...seen, [field]: now };
    } });
  };
  fromStats('dsync_cache_hits_total', 'Reads and writes served from this node\'s own line',
    (s) => s.hits, 'hits');
  fromStats('dsync_cache_misses_total', 'Operations that needed the key\'s home',
    (s) => s.misses, 'misses');
  fromStats('dsync_cache_evictions_total', 'Lines evicted by the LRU', (s) => s.evictions,
    'evictions');
  new Gauge({ name: 'dsync_cache_lines', help: 'Lines with a valid lease, by MESI state',
    labelNames: ['state'], registers, collect() {
      const s = stats().states;
      for (const state of ['M', 'E', 'S'] as const) this.set({ state }, s[state]);
    } });
  new Gauge({ name: 'dsync_cache_bytes', help: 'Bytes the LRU charges for its lines', registers,
    collect() { this.set(stats().bytes); } });
  new Gauge({ name: 'dsync_cache_dirty_bytes', registers,
    help: 'Bytes of values written on this pod and not yet handed home: lost on a kill -9 ' +
      'in write-back mode', collect() { this.set(stats().dirtyBytes); } });
  new Gauge({ name: 'dsync_cache_dirty_lines', registers,
    help: 'Lines written on this pod and not yet handed home',
    collect() { this.set(stats().dirtyLines); } });
  new Gauge({ name: 'dsync_cache_pending_writebacks', registers,
    help: 'Dirty versions sent home and not yet acknowledged as stored',
    collect() { this.set(stats().pendingWritebacks); } });
  new Gauge({ name: 'dsync_cache_directory_entries', help: 'Keys this node is home for',
    registers, collect() { this.set(stats().directoryEntries); } });
  const counter = (name: string, help: string) => new Counter({ name, help, registers });
  return {
    messages: new Counter({ name: 'dsync_cache_messages_total', registers,
      help: 'Coherence messages', labelNames: ['direction', 'type'] }),
    invalidationsSent: counter('dsync_cache_invalidations_sent_total', 'inv messages sent'),
    invalidationsReceived: counter('dsync_cache_invalidations_received_total',
      'inv messages received'),
    recalls: counter('dsync_cache_recalls_total', 'fwdGetS/fwdGetM recalls sent as a home'),
    writebacksSent: counter('dsync_cache_writebacks_total', 'Dirty data sent home (putM)'),
    storeWrites: new Counter({ name: 'dsync_cache_store_writes_total', registers,
      help: 'Versions written to the backing store', labelNames: ['outcome'] }),
    storeLatency: createStoreLatency(registry),
    coherenceLatency: new Histogram({ name: 'dsync_cache_coherence_request_duration_seconds',
      help: 'getS/getM to a remote home until answered', labelNames: ['type'],
      buckets: LATENCY_BUCKETS_SECONDS, registers }),
    opLatency: new Histogram({ name: 'dsync_cache_op_duration_seconds',
      help: 'Client cache operations', labelNames: ['op', 'result'],
      buckets: LATENCY_BUCKETS_SECONDS, registers }),
    peerMessagesDropped: counter('dsync_cache_peer_messages_dropped_total',
      'Peer payloads that were not coherence messages'),
    storeUp: new Gauge({ name: 'dsync_cache_store_up', registers,
      help: '1 while the backing store serves this node, 0 while it is known to be down' }),
  };
}

/** Feeds the per-type counters for one message. */
export function countMessage(m: CacheMetrics, direction: 'sent' | 'received',
  type: CoherenceMsgType): void {
  m.messages.inc({ direction, type });
  if (type === 'inv') (direction === 'sent' ? m.invalidationsSent : m.invalidationsReceived).inc();
  if (direction === 'sent' && (type === 'fwdGetS' || type === 'fwdGetM')) m.recalls.inc();
  if (direction === 'sent' && type === 'putM') m.writebacksSent.inc();
}
