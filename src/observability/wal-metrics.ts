// The pod WAL's series, read from its stats() at every scrape: how often the pod's disk is
// asked to fsync (one per group commit, whatever the number of Raft groups), how much is
// written, and how many segments are on disk (bounded by segmentsMax, see pod-wal.ts).
import { Counter, Gauge, type Registry } from 'prom-client';
import type { WalStats } from '../storage/pod-wal.js';

/** A counter that follows a running total read at scrape time. */
function totalCounter(registry: Registry, name: string, help: string, read: () => number):
Counter {
  let last = 0;
  return new Counter({ name, help, registers: [registry], collect() {
    const now = read();
    if (now > last) this.inc(now - last);
    last = Math.max(last, now);
  } });
}

export function registerWalMetrics(registry: Registry, stats: () => WalStats): void {
  totalCounter(registry, 'dsync_wal_fsyncs_total',
    'fsync and fdatasync calls of the pod WAL (segments, directories, snapshot files)',
    () => stats().fsyncs);
  totalCounter(registry, 'dsync_wal_group_commits_total',
    'WAL writes, each one fdatasync, carrying the saves of any number of Raft groups',
    () => stats().groupCommits);
  totalCounter(registry, 'dsync_wal_bytes_written_total', 'Bytes appended to the pod WAL',
    () => stats().bytesWritten);
  totalCounter(registry, 'dsync_wal_rewritten_entries_total',
    'Entries of lagging groups rewritten forward so that an old segment could be deleted',
    () => stats().rewrittenEntries);
  new Gauge({ name: 'dsync_wal_segments', help: 'WAL segment files on disk',
    registers: [registry], collect() { this.set(stats().segments); } });
  new Gauge({ name: 'dsync_wal_bytes', help: 'Bytes of the WAL segments on disk',
    registers: [registry], collect() { this.set(stats().walBytes); } });
}
