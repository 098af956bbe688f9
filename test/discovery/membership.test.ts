// The membership reconciler's decision (src/discovery/membership.ts) as a pure function:
// cases for each rule, then a seeded simulation of a StatefulSet that is scaled up and down and
// whose pods come back with empty volumes, the reconciler's one action applied per step, with
// invariants after every step and convergence to "voters = pods 0..replicas-1" at the end.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decideMembership, ordinalOf, type MemberView, type PodView, type ReconcileInput,
} from '../../src/discovery/membership.js';

const voter = (i: number, caughtUp = true): MemberView =>
  ({ nodeId: `n${i}`, role: 'voter', pod: `lock-${i}`, caughtUp });
const learner = (i: number, caughtUp: boolean): MemberView =>
  ({ nodeId: `n${i}`, role: 'learner', pod: `lock-${i}`, caughtUp });
const pod = (i: number, nodeId: string | null = `n${i}`): PodView =>
  ({ name: `lock-${i}`, ordinal: i, nodeId });
const input = (over: Partial<ReconcileInput>): ReconcileInput => ({ desiredReplicas: 3,
  leaderId: 'n0', members: [voter(0), voter(1), voter(2)], pods: [pod(0), pod(1), pod(2)],
  configChangePending: false, ...over });

describe('membership decisions', () => {
  it('does nothing when voters are the wanted pods', () => {
    expect(decideMembership(input({})).action).toEqual({ kind: 'none' });
    expect(ordinalOf('lock-12')).toBe(12);
    expect(ordinalOf('lock')).toBeNull();
  });

  it('changes nothing while a configuration change is in flight', () => {
    expect(decideMembership(input({ desiredReplicas: 5, configChangePending: true })).action)
      .toMatchObject({ kind: 'wait' });
  });

  it('scale-up: a new ordinal joins as a learner, and is promoted once caught up', () => {
    const up = input({ desiredReplicas: 5, pods: [0, 1, 2, 3, 4].map((i) => pod(i)) });
    expect(decideMembership(up).action).toEqual({ kind: 'add-learner', nodeId: 'n3', pod: 'lock-3' });
    const learning = { ...up, members: [voter(0), voter(1), voter(2), learner(3, false)] };
    expect(decideMembership(learning).action).toEqual({ kind: 'add-learner', nodeId: 'n4',
      pod: 'lock-4' });
    const both = { ...up, members: [...learning.members, learner(4, false)] };
    expect(decideMembership(both).action).toMatchObject({ kind: 'wait' });
    const caught = { ...up, members: [voter(0), voter(1), voter(2), learner(3, true)] };
    expect(decideMembership(caught).action).toEqual({ kind: 'promote', nodeId: 'n3' });
  });

  it('scale-down: learners first, then one voter at a time from the highest ordinal', () => {
    const members = [voter(0), voter(1), voter(2), voter(3), voter(4), learner(5, false)];
    const down = input({ desiredReplicas: 3, members, pods: [pod(0), pod(1), pod(2)] });
    expect(decideMembership(down).action).toMatchObject({ kind: 'remove', nodeId: 'n5' });
    const d2 = decideMembership({ ...down, members: members.slice(0, 5) });
    expect(d2.action).toMatchObject({ kind: 'remove', nodeId: 'n4' });
    expect(d2.warning).toMatch(/one voter at a time/);
    const d3 = decideMembership({ ...down, members: members.slice(0, 4) });
    expect(d3).toMatchObject({ action: { kind: 'remove', nodeId: 'n3' }, warning: null });
  });

  it('a leader whose own pod goes hands over leadership first', () => {
    const d = decideMembership(input({ desiredReplicas: 3, leaderId: 'n3',
      members: [voter(0), voter(1), voter(2), voter(3)] }));
    expect(d.action).toMatchObject({ kind: 'transfer-leadership' });
  });

  it('a pod back with an empty volume: the old id is removed, the new one joins', () => {
    const pods = [pod(0), pod(1), pod(2, 'n2-new')];
    expect(decideMembership(input({ pods })).action).toMatchObject({ kind: 'remove',
      nodeId: 'n2' });
    expect(decideMembership(input({ pods, members: [voter(0), voter(1)] })).action)
      .toEqual({ kind: 'add-learner', nodeId: 'n2-new', pod: 'lock-2' });
  });

  it('runs only on the leading voter', () => {
    expect(decideMembership(input({ leaderId: 'n9' })).action).toMatchObject({ kind: 'wait' });
  });
});

// ---- seeded simulation -------------------------------------------------------------------

interface World {
  desired: number;
  leader: string;
  members: MemberView[];
  pods: Map<number, string>;
  nextId: number;
}

type Event = { kind: 'scale'; replicas: number } | { kind: 'wipe'; ordinal: number } |
  { kind: 'catch-up' } | { kind: 'tick' };

const arbEvent: fc.Arbitrary<Event> = fc.oneof(
  fc.record({ kind: fc.constant('scale' as const), replicas: fc.constantFrom(1, 3, 5, 7) }),
  fc.record({ kind: fc.constant('wipe' as const), ordinal: fc.integer({ min: 0, max: 6 }) }),
  fc.constant({ kind: 'catch-up' as const }), fc.constant({ kind: 'tick' as const }),
);

function snapshot(w: World): ReconcileInput {
  return { desiredReplicas: w.desired, leaderId: w.leader, members: w.members,
    pods: [...w.pods].map(([o, id]) => pod(o, id)), configChangePending: false };
}

/** Kubernetes' side: pods appear and go with spec.replicas, at once. */
function applyEvent(w: World, e: Event): void {
  if (e.kind === 'scale') {
    w.desired = e.replicas;
    for (let o = 0; o < 7; o++) {
      if (o < w.desired && !w.pods.has(o)) w.pods.set(o, `n${w.nextId++}`);
      if (o >= w.desired) w.pods.delete(o);
    }
  } else if (e.kind === 'wipe' && w.pods.has(e.ordinal) && w.pods.get(e.ordinal) !== w.leader) {
    w.pods.set(e.ordinal, `n${w.nextId++}`);
  } else if (e.kind === 'catch-up') {
    w.members = w.members.map((m) => ({ ...m, caughtUp: true }));
  }
}

/** One reconcile step, applied; checks the invariants of the step. */
function step(w: World): string {
  const before = w.members.filter((m) => m.role === 'voter').length;
  const { action } = decideMembership(snapshot(w));
  const podOf = (id: string): string | null => {
    const hit = [...w.pods].find(([, x]) => x === id);
    return hit === undefined ? null : `lock-${hit[0]}`;
  };
  if (action.kind === 'add-learner') {
    w.members.push({ nodeId: action.nodeId, role: 'learner', pod: action.pod, caughtUp: false });
  } else if (action.kind === 'promote') {
    w.members = w.members.map((m) => m.nodeId === action.nodeId ? { ...m, role: 'voter' } : m);
  } else if (action.kind === 'remove') {
    expect(action.nodeId, 'the leader never removes itself').not.toBe(w.leader);
    w.members = w.members.filter((m) => m.nodeId !== action.nodeId);
  } else if (action.kind === 'transfer-leadership') {
    const next = w.members.find((m) => m.role === 'voter' && m.nodeId !== w.leader &&
      m.pod !== null && (ordinalOf(m.pod) ?? 99) < w.desired && podOf(m.nodeId) !== null);
    if (next !== undefined) w.leader = next.nodeId;
    else return 'stuck';
  }
  const after = w.members.filter((m) => m.role === 'voter').length;
  expect(Math.abs(after - before), 'one voter change per step').toBeLessThanOrEqual(1);
  expect(after, 'never without voters').toBeGreaterThanOrEqual(1);
  expect(w.members.some((m) => m.nodeId === w.leader && m.role === 'voter')).toBe(true);
  return action.kind;
}

describe('reconciler simulation (seeded)', () => {
  it('keeps one change per step and converges to the wanted voters', () => {
    fc.assert(fc.property(fc.array(arbEvent, { maxLength: 40 }), (events) => {
      const w: World = { desired: 3, leader: 'n0', nextId: 3,
        members: [voter(0), voter(1), voter(2)], pods: new Map([[0, 'n0'], [1, 'n1'], [2, 'n2']]) };
      for (const e of events) {
        applyEvent(w, e);
        step(w);
      }
      // Quiet period: learners catch up between steps; the reconciler must settle.
      for (let i = 0; i < 60; i++) {
        w.members = w.members.map((m) => ({ ...m, caughtUp: true }));
        if (step(w) === 'none') break;
      }
      const wanted = [...w.pods].filter(([o]) => o < w.desired).map(([, id]) => id).sort();
      const voters = w.members.filter((m) => m.role === 'voter').map((m) => m.nodeId).sort();
      // The leader's own pod is never wiped here, so every wanted pod can become a voter.
      expect(voters).toEqual(wanted);
      expect(w.members.every((m) => m.role === 'voter')).toBe(true);
    }), { numRuns: 300, seed: 20_240_601 });
  });
});
