// The cache benchmark's workload replayed on the pure coherence core, in simulated time: three
// pods (the same ring, lease, flush interval and capacity as `dsync serve`), a 1 ms network
// and store, and GETs/PUTs arriving at a fixed rate on uniformly drawn keys. No HTTP and no
// processes, so it runs in seconds and tells where the misses of the real benchmark come
// from: a read finds no line at all (first touch, invalidated by a write elsewhere, evicted)
// or finds one whose lease ran out. It reports the hit ratio after a warm-up, the misses by
// cause, and the coherence messages per operation (lease renewals included).
// Run: npx tsx benchmarks/cache-hit-model.ts [--rate N] [--keys N] [--warmup-s N]
//        [--measure-s N] [--read-fraction F] [--json]
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CoherenceNode } from '../src/cache/coherence.js';
import { DEFAULT_LEASE_MS } from '../src/cache/coherence-config.js';
import type { CacheValue, CoherenceMsg } from '../src/cache/coherence-messages.js';
import { seededRand } from '../src/raft/rand.js';
import { HashRing } from '../src/ring/hash-ring.js';
import { DSYNC_CACHE_NODES } from './cache.js';
import {
  cacheKey, DEFAULT_CACHE_KEYS, DEFAULT_CACHE_READ_FRACTION, DEFAULT_CACHE_VALUE_BYTES,
} from './redis-cache.js';

export interface HitModelOptions {
  /** Operations per second over all pods (the real benchmark's throughput). */
  readonly ratePerSec: number;
  readonly keys: number;
  readonly readFraction: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  readonly seed: number;
}

export interface HitModelResult {
  readonly reads: number;
  readonly hitRatio: number;
  /** Share of reads that missed, by what the pod's line was when the read arrived. */
  readonly missNoLine: number;
  readonly missExpired: number;
  readonly missOther: number;
  /** getS/getM messages per operation: misses and lease renewals. */
  readonly requestsPerOp: number;
  readonly invalidationsPerWrite: number;
}

interface InFlight { readonly at: number; readonly from: string; readonly to: string;
  readonly msg: CoherenceMsg }

/** Simulates `opts` and returns what the measured window saw. */
export function runHitModel(opts: HitModelOptions): HitModelResult {
  const rand = seededRand(opts.seed);
  const ids = Array.from({ length: DSYNC_CACHE_NODES }, (_, i) => `cache-${i}`);
  const ring = new HashRing(ids);
  const store = new Map<string, { value: CacheValue; version: number }>();
  const value = JSON.stringify('v'.repeat(DEFAULT_CACHE_VALUE_BYTES - 2));
  for (let i = 0; i < opts.keys; i++) store.set(cacheKey(i), { value, version: 1 });
  let now = 0;
  const nodes = new Map(ids.map((id) => [id, new CoherenceNode({
    self: id, incarnation: 1, homeOf: (k) => ring.ownerOf(k)!, nowMs: 0,
    leaseMs: DEFAULT_LEASE_MS, requestTimeoutMs: 5000, priorCopies: 'none',
    peers: ids.filter((p) => p !== id),
  })] as const));
  let net: InFlight[] = [];
  let storeOps: { at: number; node: string; key: string; write: { version: number } | null }[] =
    [];
  const measuring = (): boolean => now >= opts.warmupMs;
  const m = { reads: 0, hits: 0, noLine: 0, expired: 0, requests: 0, ops: 0, writes: 0, inv: 0 };
  const pendingReads = new Map<string, 'valid' | 'noLine' | 'expired'>();
  const carryOut = (id: string): void => {
    const node = nodes.get(id)!;
    for (const e of node.drain()) {
      if (e.type === 'send') {
        if (measuring() && (e.msg.type === 'getS' || e.msg.type === 'getM')) m.requests++;
        if (measuring() && e.msg.type === 'inv') m.inv++;
        net.push({ at: now + 1, from: id, to: e.to, msg: e.msg });
      } else if (e.type === 'reply') {
        const seen = pendingReads.get(e.reqId);
        pendingReads.delete(e.reqId);
        if (seen === undefined || e.result.type !== 'read') continue;
        m.reads++;
        if (e.result.hit) m.hits++;
        else if (seen === 'noLine') m.noLine++;
        else if (seen === 'expired') m.expired++;
      } else {
        storeOps.push({ at: now + 1, node: id, key: e.key,
          write: e.type === 'storeWrite' ? { version: e.version } : null });
        if (e.type === 'storeWrite') store.set(e.key, { value: e.value, version: e.version });
      }
    }
  };
  const perMs = opts.ratePerSec / 1000;
  let owed = 0;
  let reqCounter = 0;
  for (now = 1; now <= opts.warmupMs + opts.measureMs; now++) {
    const due = net.filter((x) => x.at <= now);
    net = net.filter((x) => x.at > now);
    for (const x of due) { nodes.get(x.to)!.receive(x.from, x.msg); carryOut(x.to); }
    const done = storeOps.filter((o) => o.at <= now);
    storeOps = storeOps.filter((o) => o.at > now);
    for (const o of done) {
      const node = nodes.get(o.node)!;
      if (o.write === null) {
        const rec = store.get(o.key) ?? { value: null, version: 0 };
        node.storeLoaded(o.key, rec.value, rec.version);
      } else {
        node.storeWritten(o.key, o.write.version);
      }
      carryOut(o.node);
    }
    for (const [id, node] of nodes) { node.tick(now); carryOut(id); }
    for (owed += perMs; owed >= 1; owed--) {
      const id = ids[rand.int(0, ids.length)]!;
      const node = nodes.get(id)!;
      const key = cacheKey(rand.int(0, opts.keys));
      const reqId = `q${++reqCounter}`;
      if (measuring()) m.ops++;
      if (rand.next() < opts.readFraction) {
        const line = node.inspectLine(key);
        if (measuring()) {
          pendingReads.set(reqId, line === null ? 'noLine' : line.valid ? 'valid' : 'expired');
        }
        node.read(reqId, key);
      } else {
        if (measuring()) m.writes++;
        node.write(reqId, key, value);
      }
      carryOut(id);
    }
  }
  const share = (n: number): number => m.reads === 0 ? 0 : Number((n / m.reads).toFixed(3));
  return {
    reads: m.reads, hitRatio: share(m.hits), missNoLine: share(m.noLine),
    missExpired: share(m.expired), missOther: share(m.reads - m.hits - m.noLine - m.expired),
    requestsPerOp: Number((m.requests / Math.max(1, m.ops)).toFixed(3)),
    invalidationsPerWrite: Number((m.inv / Math.max(1, m.writes)).toFixed(3)),
  };
}

function main(): void {
  const { values } = parseArgs({ options: {
    rate: { type: 'string', default: '7874' }, keys: { type: 'string' },
    'warmup-s': { type: 'string', default: '20' }, 'measure-s': { type: 'string', default: '20' },
    'read-fraction': { type: 'string' }, seed: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  } });
  const opts: HitModelOptions = {
    ratePerSec: Number(values.rate), keys: Number(values.keys ?? DEFAULT_CACHE_KEYS),
    readFraction: Number(values['read-fraction'] ?? DEFAULT_CACHE_READ_FRACTION),
    warmupMs: Number(values['warmup-s']) * 1000, measureMs: Number(values['measure-s']) * 1000,
    seed: Number(values.seed),
  };
  const r = runHitModel(opts);
  process.stdout.write(values.json ? `${JSON.stringify({ opts, ...r })}\n`
    : `${opts.ratePerSec} ops/s, ${opts.keys} keys, ${opts.readFraction * 100}% GET, ` +
      `warm-up ${opts.warmupMs / 1000} s: ${JSON.stringify(r)}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main();
}
