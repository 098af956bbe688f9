// Reads on the leader: ReadIndex rounds (dissertation §6.4) batched on heartbeats, and what a
// lease read (§6.4.1) rests on in the core: the rounds a quorum answered, the followers'
// refusal to vote while they hear from a leader (§4.2.3), a restarted voter holding its vote,
// and no lease at all in a term in which leadership was being handed over (§3.10).

import { describe, expect, it } from 'vitest';
import type { RaftNode } from '../../src/raft/raft.js';
import { ReadOnlyQueue } from '../../src/raft/read-only.js';
import type { Entry, Message, NodeId } from '../../src/raft/types.js';
import { Net, opts } from './harness.js';

const ABC = ['a', 'b', 'c'];

function cluster(over = {}): Net {
  const net = new Net(ABC, over);
  net.campaign('a');
  expect(net.role('a')).toBe('leader');
  return net;
}

const heartbeatsFrom = (net: Net, from: NodeId): Message[] =>
  net.sent.filter((m) => m.type === 'heartbeat' && m.from === from);

describe('§6.4 ReadIndex rounds', () => {
  it('a read is confirmed only by a round broadcast after it arrived', () => {
    const q = new ReadOnlyQueue(16);
    q.add(1, 5);
    const r1 = q.nextRound();
    q.add(2, 5);
    expect(q.ack('b', r1, 'a', ABC)).toEqual([{ ctx: 1, index: 5 }]);
    // Read 2 arrived after round r1 left: an answer to r1 says nothing about it.
    expect(q.ack('c', r1, 'a', ABC)).toEqual([]);
    const r2 = q.nextRound();
    expect(q.ack('c', r2, 'a', ABC)).toEqual([{ ctx: 2, index: 5 }]);
  });

  it('reads that arrive while a round is in flight share the next one', () => {
    const net = cluster();
    const a = net.node('a');
    const before = heartbeatsFrom(net, 'a').length;
    a.readIndex(1);
    a.readIndex(2);
    a.readIndex(3);
    net.flush();
    // One broadcast (to b and c) so far: reads 2 and 3 wait for round 1's answers.
    expect(heartbeatsFrom(net, 'a').length - before).toBe(2);
    net.deliver();
    expect(net.readStates.get('a')?.map((r) => r.ctx)).toEqual([1, 2, 3]);
    // Round 1 confirmed read 1; one more round confirmed reads 2 and 3 together.
    expect(heartbeatsFrom(net, 'a').length - before).toBe(4);
  });

  it('a read waiting for the next round rides the periodic heartbeat', () => {
    const net = cluster();
    const a = net.node('a');
    net.filter = (m) => m.type !== 'heartbeatResp';
    a.readIndex(1);
    net.deliver();
    a.readIndex(2);
    net.deliver();
    const before = heartbeatsFrom(net, 'a').length;
    net.filter = () => true;
    net.tick('a');
    // The tick's heartbeat carried the round both reads wait for: nothing sent besides it.
    expect(net.readStates.get('a')?.map((r) => r.ctx)).toEqual([1, 2]);
    expect(heartbeatsFrom(net, 'a').length - before).toBe(2);
  });
});

describe('heartbeat answers and lost appends', () => {
  it('answers to read rounds resend lost appends at most once per heartbeat interval', () => {
    const net = cluster({ maxInflightAppends: 1 });
    const a = net.node('a');
    // b's acknowledgements are lost: the leader sees it behind, its window full.
    net.filter = (m) => !(m.type === 'appendResp' && m.from === 'b');
    net.propose('a', 'x');
    const appendsToB = (): number =>
      net.sent.filter((m) => m.type === 'append' && m.to === 'b').length;
    const before = appendsToB();
    for (let ctx = 1; ctx <= 5; ctx++) {
      a.readIndex(ctx);
      net.deliver();
    }
    expect(net.readStates.get('a')).toHaveLength(5);
    // Five rounds answered by b, one resend: a storm of resends overtaking each other can
    // keep a follower from catching up (simulator seed 2849 of an earlier version).
    expect(appendsToB() - before).toBe(1);
    net.tick('a');
    expect(appendsToB() - before).toBe(2);
  });
});

describe('§6.4.1 what a lease read rests on', () => {
  it('is offered only once the leader has committed in its term, with the confirmed round', () => {
    const net = new Net(ABC);
    net.filter = (m) => m.type !== 'appendResp';
    net.campaign('a');
    const a = net.node('a');
    expect(a.status().role).toBe('leader');
    expect(a.leaseRead()).toBeNull();
    net.filter = () => true;
    net.tickAll(1);
    const lease = a.leaseRead();
    expect(lease).not.toBeNull();
    expect(lease?.index).toBe(a.status().commit);
    const round = lease?.round ?? 0;
    net.tick('a');
    expect(a.leaseRead()?.round).toBeGreaterThan(round);
    expect(net.node('b').leaseRead()).toBeNull();
  });

  it('the confirmed round stops advancing when no quorum answers', () => {
    const net = cluster();
    const a = net.node('a');
    net.tick('a');
    const round = a.leaseRead()?.round;
    net.isolate('a');
    net.tick('a', 3);
    expect(a.leaseRead()?.round).toBe(round);
  });

  it('is never offered again in a term in which a transfer was started', () => {
    const net = cluster();
    const a = net.node('a');
    net.isolate('b');
    a.transferLeadership('b');
    expect(a.leaseRead()).toBeNull();
    // The transfer is given up after an election timeout, but a timeoutNow still on its way
    // could start b's election at any time, and b's voters would not wait out a lease.
    net.tick('a', 12);
    net.heal();
    net.tickAll(2);
    expect(a.status()).toMatchObject({ role: 'leader', term: 1 });
    expect(() => a.propose(new Uint8Array([1]))).not.toThrow();
    expect(a.leaseRead()).toBeNull();
  });

  it('a follower refuses votes for an election timeout after it last heard the leader', () => {
    const net = cluster();
    net.tick('a');
    net.isolate('a');
    // c campaigns as soon as it may; b must not help before its own election timeout.
    let ticks = 0;
    while (net.role('b') !== 'leader' && net.role('c') !== 'leader' && ticks < 100) {
      net.tick('b');
      net.tick('c');
      ticks++;
    }
    expect(ticks).toBeGreaterThanOrEqual(10 - 1);
  });

  it('a restarted voter holds its vote for an election timeout (holdVotesAfterStart)', () => {
    for (const hold of [true, false]) {
      const net = cluster();
      net.tick('a');
      restart(net, 'b', { holdVotesAfterStart: hold });
      net.isolate('a');
      // c, cut off from a, campaigns after its election timeout and asks the restarted b.
      net.tick('c', 25);
      const electedWithinLease = net.role('c') === 'leader';
      if (hold) {
        expect(electedWithinLease).toBe(false);
      } else {
        // What the hold prevents: b forgot the lease it gave a, and a new leader is elected
        // while a's lease, counted from b's answer, may still run.
        expect(electedWithinLease).toBe(true);
      }
    }
  });
});

/** Replaces `id` by a new RaftNode started from what it had persisted. */
function restart(net: Net, id: NodeId, extra: object): RaftNode {
  const old = net.node(id);
  const s = old.status();
  const entries: Entry[] = [];
  for (let i = s.firstIndex; i <= s.lastIndex; i++) {
    const e = old.entryAt(i);
    if (e !== undefined) entries.push(e);
  }
  return net.add(id, { hardState: { term: s.term, vote: s.leader, commit: s.commit },
    snapshot: null, entries, config: net.config }, { ...opts(id), ...extra });
}
