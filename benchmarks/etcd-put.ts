// Reference for "Raft commit": 100-byte puts into a 3-member etcd cluster through the etcd3
// client, closed loop with 1, 16 and 64 puts in flight. Every put is a Raft commit with an
// fsync on a majority, like a dsync command. Run: npx tsx benchmarks/etcd-put.ts [--json]
import { pathToFileURL } from 'node:url';
import { assert } from '../src/assert.js';
import { startEtcdCluster } from './lib/etcd-cluster.js';
import type { EtcdCluster } from './lib/etcd-cluster.js';
import { runLoad } from './lib/load.js';
import { makeRow, parseBenchArgs, printRows } from './lib/stats.js';
import type { Row } from './lib/stats.js';

/** Measured seconds per setting. */
export const DEFAULT_PUT_DURATION_MS = 5000;
export const DEFAULT_PUT_INFLIGHT = [1, 16, 64] as const;
export const DEFAULT_PUT_VALUE_BYTES = 100;
/** Keys are overwritten round-robin so the keyspace (and etcd's db) stays small. */
export const PUT_KEYS = 1000;
const VALUE_BYTES_MAX = 1 << 20;

export interface EtcdPutOptions {
  /** A running cluster to use (left running); by default one is started and stopped. */
  cluster?: EtcdCluster;
  /** Measured ms per setting (default DEFAULT_PUT_DURATION_MS). */
  durationMs?: number;
  /** Puts in flight, one row each (default 1, 16, 64). */
  inflight?: readonly number[];
  /** Value size in bytes (default 100). */
  valueBytes?: number;
}

/** One row per in-flight setting: `system` is `etcd <version>`, `setting` `N in flight`. */
export async function benchEtcdPut(opts: EtcdPutOptions = {}): Promise<Row[]> {
  const valueBytes = opts.valueBytes ?? DEFAULT_PUT_VALUE_BYTES;
  assert(Number.isSafeInteger(valueBytes) && valueBytes >= 1 && valueBytes <= VALUE_BYTES_MAX,
    `valueBytes must be an integer in [1, ${VALUE_BYTES_MAX}]`);
  const cluster = opts.cluster ?? await startEtcdCluster();
  try {
    const client = cluster.client();
    const value = Buffer.alloc(valueBytes, 'v');
    const rows: Row[] = [];
    for (const inflight of opts.inflight ?? DEFAULT_PUT_INFLIGHT) {
      const result = await runLoad({
        label: `etcd put, ${inflight} in flight`,
        concurrency: inflight,
        durationMs: opts.durationMs ?? DEFAULT_PUT_DURATION_MS,
        op: async (_worker, i) => {
          await client.put(`bench/put/${i % PUT_KEYS}`).value(value);
        },
      });
      rows.push(makeRow(`etcd ${cluster.version}`, `${inflight} in flight`, result,
        { members: cluster.members.length, valueBytes }));
    }
    return rows;
  } finally {
    if (opts.cluster === undefined) await cluster.stop();
  }
}

async function main(): Promise<void> {
  const args = parseBenchArgs();
  const rows = await benchEtcdPut(
    args.durationMs === undefined ? {} : { durationMs: args.durationMs });
  printRows('Raft commit: 100-byte puts, 3 members, fsync on', rows, rows[0]?.system ?? '', args);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
