// The wait-for graph (owner → owners it waits on) and cycle search in it. The graph is never
// stored: `waitForSuccessors` answers from the queues, so there is nothing to keep in step.
//
// A waiter waits on the conflicting holders and on every conflicting waiter ahead of it, so
// spelled out, a queue of N exclusive waiters has N²/2 edges, and a search that lists them
// costs O(N²) per enqueue. The graph is therefore given in a compressed form with auxiliary
// nodes that stand for a set of owners: "every waiter ahead of o in lock L" is one node whose
// successors are the waiter just ahead of o and "every waiter ahead of that one"; likewise
// "every exclusive waiter ahead of o" and "every holder of L". Reachability between owners is
// the same as in the spelled-out graph (auxiliary nodes only lead forward in a queue, so they
// close no cycle of their own), each node is visited once per search, and a search costs
// O(owners + waiters + holders it reaches) at most.
//
// The searches are iterative, so a long chain of waiters cannot overflow the stack, and visit
// successors in the order given (locks by name, holders in grant order, waiters from the back
// of the queue to the front), so every replica reports the same cycle.
import { assert } from '../assert.js';
import type { LockEntry } from './lock-table-queue.js';

/** What the graph is read from: the table's locks and its index of what each owner waits on
 * or holds. */
export interface WaitForSource {
  readonly locks: ReadonlyMap<string, LockEntry>;
  readonly ownerWaits: ReadonlyMap<string, ReadonlySet<string>>;
  readonly ownerLocks: ReadonlyMap<string, ReadonlySet<string>>;
}

// Auxiliary node ids start with a control character, which owner ids never contain.
const AUX = '\u0001';
const SEP = '\u0000';
const aheadAll = (name: string, owner: string): string => `${AUX}a${SEP}${name}${SEP}${owner}`;
const aheadExclusive = (name: string, owner: string): string =>
  `${AUX}x${SEP}${name}${SEP}${owner}`;
const allHolders = (name: string): string => `${AUX}h${SEP}${name}${SEP}`;

export function isAuxNode(node: string): boolean {
  return node.startsWith(AUX);
}

function entryOf(src: WaitForSource, name: string): LockEntry {
  const e = src.locks.get(name);
  assert(e !== undefined, () => `the wait-for graph names a live lock ${name}`);
  return e;
}

/** Successors of an owner or an auxiliary node in the compressed wait-for graph. */
export function waitForSuccessors(src: WaitForSource, node: string): string[] {
  if (!isAuxNode(node)) return ownerSuccessors(src, node);
  const kind = node[1];
  const at = node.indexOf(SEP, 3);
  const name = node.slice(3, at);
  const e = entryOf(src, name);
  if (kind === 'h') return [...e.holders.keys()];
  const owner = node.slice(at + 1);
  const ahead = e.waiters.ahead(owner);
  assert(ahead !== undefined, 'an auxiliary node stands for a non-empty prefix');
  const out: string[] = [];
  if (kind === 'a' || ahead.mode === 'exclusive') out.push(ahead.owner);
  if (e.waiters.ahead(ahead.owner) !== undefined) {
    out.push(kind === 'a' ? aheadAll(name, ahead.owner) : aheadExclusive(name, ahead.owner));
  }
  return out;
}

/** In every lock `owner` waits on (by name): the holders whose mode conflicts with its
 * request, and the conflicting waiters ahead of it (through one auxiliary node). */
function ownerSuccessors(src: WaitForSource, owner: string): string[] {
  const names = src.ownerWaits.get(owner);
  if (names === undefined) return [];
  const out: string[] = [];
  for (const name of [...names].sort()) {
    const e = entryOf(src, name);
    const me = e.waiters.get(owner);
    assert(me !== undefined, () => `wait index: ${owner} waits on ${name}`);
    if (e.holders.has(owner)) {
      // An upgrade: it waits for the other (shared) holders, and for nobody ahead.
      for (const h of e.holders.keys()) if (h !== owner) out.push(h);
    } else if (me.mode === 'exclusive') {
      if (e.holders.size > 0) out.push(allHolders(name));
    } else if (e.holderMode() === 'exclusive') {
      out.push(...e.holders.keys());
    }
    if (e.waiters.ahead(owner) !== undefined) {
      out.push(me.mode === 'exclusive' ? aheadAll(name, owner) : aheadExclusive(name, owner));
    }
  }
  return out;
}

/** True when nobody can be waiting on `owner`: no lock it holds has a queue, and it is last
 * in every queue it is in. Then no cycle runs through it, whatever the rest of the graph:
 * the O(1) answer for the common enqueue (a new owner joining the back of one queue). */
export function nobodyWaitsOn(src: WaitForSource, owner: string): boolean {
  for (const name of src.ownerLocks.get(owner) ?? []) {
    const e = entryOf(src, name);
    if (e.waiters.has(owner) ? !e.waiters.isLast(owner) : e.waiters.size > 0) return false;
  }
  return true;
}

/** A wait-for cycle through `owner` as [owner, a, b, …] (owners only; the last waits on
 * `owner`), or null when there is none. */
export function findWaitForCycle(src: WaitForSource, owner: string): string[] | null {
  if (nobodyWaitsOn(src, owner)) return null;
  const path = findCycleThrough(owner, (n) => waitForSuccessors(src, n));
  return path === null ? null : path.filter((n) => !isAuxNode(n));
}

/** Whether the wait-for graph has any cycle (invariant checks). O(size of the table). */
export function waitForHasCycle(src: WaitForSource): boolean {
  return hasAnyCycle([...src.ownerWaits.keys()].sort(), (n) => waitForSuccessors(src, n));
}

interface Frame {
  readonly owner: string;
  readonly next: readonly string[];
  i: number;
}

/** A cycle through `start` as [start, a, b, …] where the last owner waits on `start`,
 * or null when `start` is on no cycle. Visits each owner at most once. */
export function findCycleThrough(
  start: string,
  successors: (owner: string) => readonly string[],
): string[] | null {
  const visited = new Set<string>([start]);
  const stack: Frame[] = [{ owner: start, next: successors(start), i: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    assert(top !== undefined, 'stack is not empty');
    const succ = top.next[top.i];
    if (succ === undefined) {
      stack.pop();
      continue;
    }
    top.i += 1;
    if (succ === start) return stack.map((f) => f.owner);
    if (visited.has(succ)) continue;
    visited.add(succ);
    stack.push({ owner: succ, next: successors(succ), i: 0 });
  }
  return null;
}

/** Whether any cycle exists among `owners` (used by invariant checks). Colours: an owner on
 * the current DFS path that is reached again closes a cycle. */
export function hasAnyCycle(
  owners: readonly string[],
  successors: (owner: string) => readonly string[],
): boolean {
  const done = new Set<string>();
  for (const root of owners) {
    if (done.has(root)) continue;
    const onPath = new Set<string>([root]);
    const stack: Frame[] = [{ owner: root, next: successors(root), i: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      assert(top !== undefined, 'stack is not empty');
      const succ = top.next[top.i];
      if (succ === undefined) {
        stack.pop();
        onPath.delete(top.owner);
        done.add(top.owner);
        continue;
      }
      top.i += 1;
      if (onPath.has(succ)) return true;
      if (done.has(succ)) continue;
      onPath.add(succ);
      stack.push({ owner: succ, next: successors(succ), i: 0 });
    }
  }
  return false;
}
