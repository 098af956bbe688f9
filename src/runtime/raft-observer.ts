// Maps a Raft group's observations onto the node's prom-client series.
import type { RaftMetrics } from '../observability/metrics.js';
import type { RaftGroupObserver } from './raft-group.js';

export function raftObserver(m: RaftMetrics): RaftGroupObserver {
  const leaders = new Map<number, string | null>();
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
      m.proposals.inc({ group: String(group), outcome });
      if (outcome === 'ok') m.commitLatency.observe({ group: String(group) }, seconds);
    },
    onSnapshot(group) {
      m.snapshots.inc({ group: String(group) });
    },
    onBatch(group, commands) {
      m.entryCommands.observe({ group: String(group) }, commands);
    },
  };
}
