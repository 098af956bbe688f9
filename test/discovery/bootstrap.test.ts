// The start-up decision of a node (recover, bootstrap, join, wait, refuse) as a pure function:
// a new cluster only from an empty data dir when no peer answers with an existing cluster,
// with the initial voters that the initial ordinals report.
import { describe, expect, it } from 'vitest';
import { decideBootstrap, type BootstrapInput, type PeerAnswer } from '../../src/discovery/bootstrap.js';

const peer = (ordinal: number, hasCluster = false, clusterId = 'prod'): PeerAnswer =>
  ({ name: `lock-${ordinal}`, ordinal, answer: { nodeId: `lock-${ordinal}-id`, clusterId,
    hasCluster } });
const silent = (ordinal: number): PeerAnswer => ({ name: `lock-${ordinal}`, ordinal, answer: null });
const base: BootstrapInput = { clusterId: 'prod', nodeId: 'lock-0-id', ordinal: 0,
  initialReplicas: 3, hasData: false, peers: [peer(1), peer(2)] };

describe('start-up decision', () => {
  it('recovers whenever the data dir holds Raft state', () => {
    expect(decideBootstrap({ ...base, hasData: true, peers: [] })).toEqual({ kind: 'recover' });
  });

  it('bootstraps with the initial ordinals\' ids once all of them answered without a cluster',
    () => {
      expect(decideBootstrap(base)).toEqual({ kind: 'bootstrap',
        voters: ['lock-0-id', 'lock-1-id', 'lock-2-id'] });
      // Every initial pod computes the same voters.
      expect(decideBootstrap({ ...base, nodeId: 'lock-2-id', ordinal: 2,
        peers: [peer(0), peer(1)] })).toEqual(decideBootstrap(base));
    });

  it('waits while an initial member has not answered', () => {
    expect(decideBootstrap({ ...base, peers: [peer(1), silent(2)] }))
      .toMatchObject({ kind: 'wait', reason: expect.stringContaining('lock-2') });
    expect(decideBootstrap({ ...base, peers: [peer(1)] })).toMatchObject({ kind: 'wait' });
  });

  it('joins when a peer already holds the cluster (an empty volume under an old name)', () => {
    expect(decideBootstrap({ ...base, peers: [peer(1, true), peer(2, true)] }))
      .toEqual({ kind: 'join', members: ['lock-1-id', 'lock-2-id'],
        voters: ['lock-1-id', 'lock-2-id'] });
    expect(decideBootstrap({ ...base, peers: [peer(1, true), silent(2)] }))
      .toEqual({ kind: 'join', members: ['lock-1-id'], voters: ['lock-1-id'] });
  });

  it('joins with the voters a member reports, and starts as a voter when it is one of them',
    () => {
      const holder = (ordinal: number, voters: string[]): PeerAnswer => ({ name: `lock-${ordinal}`,
        ordinal, answer: { nodeId: `lock-${ordinal}-id`, clusterId: 'prod', hasCluster: true,
          voters } });
      // lock-1 bootstrapped a moment earlier with lock-0 among the voters: lock-0 is a voter.
      expect(decideBootstrap({ ...base, peers: [holder(1, ['lock-2-id', 'lock-1-id',
        'lock-0-id']), peer(2)] }))
        .toEqual({ kind: 'bootstrap', voters: ['lock-0-id', 'lock-1-id', 'lock-2-id'] });
      // A new id (an empty volume under an old name) is not among them: it joins.
      expect(decideBootstrap({ ...base, nodeId: 'lock-0-new', peers: [holder(1, ['lock-0-id',
        'lock-1-id', 'lock-2-id']), silent(2)] })).toEqual({ kind: 'join', members: ['lock-1-id'],
        voters: ['lock-0-id', 'lock-1-id', 'lock-2-id'] });
    });

  it('a pod beyond the initial replicas never bootstraps: it waits, then joins', () => {
    const newcomer = { ...base, nodeId: 'lock-3-id', ordinal: 3 };
    expect(decideBootstrap({ ...newcomer, peers: [peer(0), peer(1), peer(2)] }))
      .toMatchObject({ kind: 'wait' });
    expect(decideBootstrap({ ...newcomer, peers: [peer(0, true), silent(1), silent(2)] }))
      .toEqual({ kind: 'join', members: ['lock-0-id'], voters: ['lock-0-id'] });
  });

  it('refuses when a peer belongs to another cluster', () => {
    expect(decideBootstrap({ ...base, peers: [peer(1), peer(2, true, 'other')] }))
      .toMatchObject({ kind: 'refuse', reason: expect.stringContaining('"other"') });
  });
});
