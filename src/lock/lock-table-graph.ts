// Cycle search in the wait-for graph (owner → owners it waits on). The graph is never stored:
// the table answers `successors` from its queues, so there is nothing to keep in step.
// Iterative, so a long chain of waiters cannot overflow the stack; successors are visited
// in the order given (the table sorts them), so every replica reports the same cycle.
import { assert } from '../assert.js';

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
