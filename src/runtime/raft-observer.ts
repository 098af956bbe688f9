// Maps a Raft group's observations onto the node's prom-client series. The series of a group
// are bound once (prom-client hashes the labels of every unbound call, and proposals and
// reads are counted per request).
import type { RaftMetrics } from '../observability/metrics.js';
import type { RaftGroupObserver, ReadKind } from './raft-group.js';

interface GroupSeries {
  readonly ok: { inc(): void };
  readonly failed: { inc(): void };
  readonly commitLatency: { observe(v: number): void };
  readonly entryCommands: { observe(v: number): void };
  readonly reads: Readonly<Record<ReadKind, { inc(): void }>>;
}

function bind(m: RaftMetrics, group: number): GroupSeries {
  const g = String(group);
  return {
    ok: m.proposals.labels(g, 'ok'),
    failed: m.proposals.labels(g, 'error'),
    commitLatency: m.commitLatency.labels(g),
    entryCommands: m.entryCommands.labels(g),
    reads: { lease: m.reads.labels(g, 'lease'), read_index: m.reads.labels(g, 'read_index'),
      lease_fallback: m.reads.labels(g, 'lease_fallback') },
  };
}

export function raftObserver(m: RaftMetrics): RaftGroupObserver {
  const leaders = new Map<number, string | null>();
  const bound = new Map<number, GroupSeries>();
  const series = (group: number): GroupSeries => {
    let s = bound.get(group);
    if (s === undefined) {
      s = bind(m, group);
      bound.set(group, s);
    }
    return s;
  };
  return {
    onRole(group, role, term, leader) {
      const g = String(group);
      m.term.set({ group: g }, term);
      m.isLeader.set({ group: g }, role === 'leader' ? 1 : 0);
      if (leaders.get(group) !== leader && leader !== null) m.leaderChanges.inc({ group: g });
      leaders.set(group, leader);
    },
    onCommit(group, commit, applied) {
      m.commitIndex.set({ group: String(group) }, commit);
      m.appliedIndex.set({ group: String(group) }, applied);
    },
    onPersist(_group, seconds) {
      m.fsyncDuration.observe(seconds);
    },
    onProposalDone(group, seconds, outcome) {
      const s = series(group);
      if (outcome === 'ok') {
        s.ok.inc();
        s.commitLatency.observe(seconds);
      } else {
        s.failed.inc();
      }
    },
    onSnapshot(group) {
      m.snapshots.inc({ group: String(group) });
    },
    onBatch(group, commands) {
      series(group).entryCommands.observe(commands);
    },
    onRead(group, kind) {
      series(group).reads[kind].inc();
    },
  };
}
