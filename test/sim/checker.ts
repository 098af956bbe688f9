// Safety invariants of Raft (Figure 3 of the paper), checked by the simulator as the run
// unfolds. Each check throws SimViolation with a description; the simulator adds the seed.

import { quorumSize } from '../../src/raft/quorum.js';
import type { Entry, NodeId } from '../../src/raft/types.js';

export class SimViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimViolation';
  }
}

function violated(cond: boolean, message: () => string): void {
  if (!cond) throw new SimViolation(message());
}

export function entryKey(e: Entry): string {
  let s = `${e.type}:`;
  for (const b of e.data) s += String.fromCharCode(b);
  return s;
}

/** What a leader's log must contain: read-only view of a node for the checks. */
export interface LogView {
  readonly id: NodeId;
  readonly term: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  entryAt(index: number): Entry | undefined;
}

export class SafetyChecker {
  /** Election safety: the one leader seen in each term. */
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** One vote per term (§5.2, kept across restarts): "voter/term" -> the candidate. */
  private readonly votedFor = new Map<string, NodeId>();
  /** Log matching: per (index, term) the entry key and the term of the entry before it. */
  private readonly seen = new Map<string, { key: string; prevTerm: number | undefined }>();
  /** Entries known committed somewhere: index -> term. */
  private readonly committedTerm = new Map<number, number>();
  /** State machine safety: the state hash after applying each index. */
  private readonly hashAt = new Map<number, number>();
  /** Highest commit index any node has reported. */
  maxCommit = 0;
  /** Reads in flight: "node/ctx" -> the highest commit known when the read was requested. */
  private readonly readFloor = new Map<string, number>();

  leader(term: number, id: NodeId): void {
    const prev = this.leaderOfTerm.get(term);
    violated(prev === undefined || prev === id,
      () => `election safety: two leaders in term ${term}: ${prev} and ${id}`);
    this.leaderOfTerm.set(term, id);
  }

  /** A voter granted its vote (a real one, not a pre-vote) to `candidate` in `term`. */
  voteGranted(voter: NodeId, term: number, candidate: NodeId): void {
    const key = `${voter}/${term}`;
    const prev = this.votedFor.get(key);
    violated(prev === undefined || prev === candidate,
      () => `vote safety: ${voter} voted for ${prev} and ${candidate} in term ${term}`);
    this.votedFor.set(key, candidate);
  }

  /** §5.2: a new leader won its term with the votes of a majority of the voters, its own
   * included, as they were granted on the wire. */
  elected(leader: NodeId, term: number, voters: readonly NodeId[]): void {
    const by = voters.filter((v) => v === leader || this.votedFor.get(`${v}/${term}`) === leader);
    violated(by.length >= quorumSize(voters.length), () => `election quorum: ${leader} leads ` +
      `term ${term} with the votes of [${by.join(',')}] of voters [${voters.join(',')}]`);
  }

  /** §5.4.2: a leader commits by counting replicas only an entry of its own term (earlier
   * entries commit with it, by the log matching property). */
  leaderCommitted(leader: NodeId, term: number, index: number, entryTerm: number | undefined):
    void {
    violated(entryTerm === term, () => `commit rule: leader ${leader} of term ${term} ` +
      `advanced its commit to ${index}@${entryTerm}, an entry of an earlier term`);
  }

  /** A new leader's log holds every entry committed so far (leader completeness, §5.4). */
  newLeader(log: LogView): void {
    for (const [index, term] of this.committedTerm) {
      if (index < log.firstIndex) continue;
      const e = log.entryAt(index);
      violated(e !== undefined && e.term === term, () =>
        `leader completeness: leader ${log.id} of term ${log.term} lacks committed ` +
        `${index}@${term} (has ${e === undefined ? 'nothing' : `${e.index}@${e.term}`})`);
    }
  }

  /** Entries a node persisted, with the term of the entry before the first one. */
  persisted(node: NodeId, entries: readonly Entry[], prevTerm: number | undefined): void {
    let before = prevTerm;
    for (const e of entries) {
      const id = `${e.index}@${e.term}`;
      const key = entryKey(e);
      const prev = this.seen.get(id);
      if (prev === undefined) {
        this.seen.set(id, { key, prevTerm: before });
      } else {
        violated(prev.key === key, () => `log matching: ${node} has different data at ${id}`);
        violated(prev.prevTerm === undefined || before === undefined || prev.prevTerm === before,
          () => `log matching: ${node} has ${id} after term ${before}, another after ` +
            `${prev.prevTerm}`);
      }
      before = e.term;
    }
  }

  committed(node: NodeId, index: number, term: number): void {
    const prev = this.committedTerm.get(index);
    violated(prev === undefined || prev === term,
      () => `committed entry changed: ${node} commits ${index}@${term}, known ${index}@${prev}`);
    this.committedTerm.set(index, term);
  }

  commitSeen(node: NodeId, commit: number, previous: number): void {
    violated(commit >= previous, () => `commit went backwards on ${node}: ${previous} -> ${commit}`);
    if (commit > this.maxCommit) this.maxCommit = commit;
  }

  applied(node: NodeId, index: number, hash: number): void {
    const prev = this.hashAt.get(index);
    violated(prev === undefined || prev === hash,
      () => `state machine safety: ${node} state at ${index} differs from another node's`);
    this.hashAt.set(index, hash);
  }

  readRequested(node: NodeId, ctx: number): void {
    this.readFloor.set(`${node}/${ctx}`, this.maxCommit);
  }

  readAnswered(node: NodeId, ctx: number, index: number): void {
    const floor = this.readFloor.get(`${node}/${ctx}`);
    violated(floor !== undefined, () => `read ${ctx} on ${node} answered but never asked`);
    violated(index >= (floor ?? 0), () =>
      `linearizability: read ${ctx} on ${node} got index ${index} < commit ${floor} known ` +
      'when it was requested');
    this.readFloor.delete(`${node}/${ctx}`);
  }

  readDropped(node: NodeId, ctx: number): void {
    this.readFloor.delete(`${node}/${ctx}`);
  }
}
