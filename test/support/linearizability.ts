// A Wing–Gong linearizability checker (with the memoisation of Lowe's WGL variant) for a
// read/write register per key. Registers are independent, so the history is split by key and
// each key is checked on its own (P-compositionality), which keeps the search small. Every
// key is checked, whatever the verdict on the others, and the report gives each key's
// verdict: a search that gives up on one key must not hide a violation on the next.
//
// Operations whose outcome is unknown (pending: the caller gave up, the node crashed) have
// `ret: null`: a pending write may take effect at any point after its call or never; a
// pending read constrains nothing and is dropped. A failed operation that is known not to
// have taken effect should simply be left out of the history.

export type RegisterValue = string | number | null;

export interface RegisterOp {
  readonly op: 'read' | 'write';
  readonly key: string;
  /** For a write the value written; for a read the value it returned. */
  readonly value: RegisterValue;
  /** Invocation time; any clock that orders real time. */
  readonly call: number;
  /** Response time, or null when the outcome is unknown. */
  readonly ret: number | null;
  /** Free-form label printed in counterexamples (client, node, request id). */
  readonly label?: string;
}

export interface Violation {
  readonly key: string;
  readonly verdict: 'violation';
  /** The key's history sorted by call, and the longest linearisable prefix found. */
  readonly counterexample: {
    readonly history: readonly RegisterOp[];
    readonly longestLinearization: readonly RegisterOp[];
  };
}

/** The search hit its bound on this key: neither linearizable nor a violation is known. */
export interface GaveUp {
  readonly key: string;
  readonly verdict: 'gaveUp';
  readonly exploredStates: number;
  readonly ops: number;
}

export type KeyVerdict = { readonly key: string; readonly verdict: 'ok' } | Violation | GaveUp;

export interface LinearizabilityReport {
  /** false when some key is not linearizable; 'unknown' when none is but the search gave up
   * on some; true when every key is linearizable. */
  readonly ok: boolean | 'unknown';
  /** Every key of the history, in key order. */
  readonly keys: readonly KeyVerdict[];
  readonly violations: readonly Violation[];
  readonly gaveUp: readonly GaveUp[];
}

export interface CheckOptions {
  /** Value of every register before the history, default null. */
  readonly initial?: (key: string) => RegisterValue;
  /** Search states per key before giving up with 'unknown', default 200_000. */
  readonly statesMax?: number;
}

export const DEFAULT_CHECK_STATES_MAX = 200_000;

export function checkLinearizable(
  history: readonly RegisterOp[],
  opts: CheckOptions = {},
): LinearizabilityReport {
  const byKey = new Map<string, RegisterOp[]>();
  for (const op of history) {
    if (op.ret !== null && op.ret < op.call) throw new Error(`op returns before its call: ${op.key}`);
    if (op.op === 'read' && op.ret === null) continue;
    let ops = byKey.get(op.key);
    if (ops === undefined) byKey.set(op.key, (ops = []));
    ops.push(op);
  }
  const keys: KeyVerdict[] = [];
  for (const [key, ops] of [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const initial = opts.initial?.(key) ?? null;
    keys.push(checkKey(key, withoutUnseenPendingWrites(ops, initial), initial,
      opts.statesMax ?? DEFAULT_CHECK_STATES_MAX));
  }
  const violations = keys.filter((k): k is Violation => k.verdict === 'violation');
  const gaveUp = keys.filter((k): k is GaveUp => k.verdict === 'gaveUp');
  const ok = violations.length > 0 ? false : gaveUp.length > 0 ? 'unknown' : true;
  return { ok, keys, violations, gaveUp };
}

/** The violations with their counterexamples and the keys given up on, for a failure
 * message; empty when every key is linearizable. */
export function describeReport(report: LinearizabilityReport): string {
  const parts = report.violations.map((v) => `history of ${v.key} is not linearizable:\n` +
    `${describeOps(v.counterexample.history)}\nlongest linearizable prefix:\n` +
    describeOps(v.counterexample.longestLinearization));
  if (report.gaveUp.length > 0) parts.push(describeGaveUp(report.gaveUp));
  return parts.join('\n');
}

/** One line naming the keys the search gave up on. */
export function describeGaveUp(gaveUp: readonly GaveUp[]): string {
  return `gave up on ${gaveUp.length} key(s) (search bound reached; raise statesMax or ` +
    `shorten the history): ${gaveUp.map((g) => `${g.key} (${g.ops} ops, ` +
      `${g.exploredStates} states)`).join(', ')}`;
}

/**
 * A pending write whose value nobody read may be taken to have never happened: "never" is one
 * of its allowed outcomes, and choosing it removes no linearisation of the rest. That holds
 * only when the value is unique to that write (else a read of the value could be explained
 * by it) and is not the initial value. Pending writes are what make the search explode (each
 * may be placed anywhere after its call): a crash of every node mid-write leaves dozens, and
 * almost none of them are ever read.
 */
function withoutUnseenPendingWrites(ops: readonly RegisterOp[], initial: RegisterValue):
  RegisterOp[] {
  const writers = new Map<string, number>();
  const read = new Set<string>();
  const tag = (v: RegisterValue): string => `${typeof v}:${String(v)}`;
  for (const op of ops) {
    if (op.op === 'write') writers.set(tag(op.value), (writers.get(tag(op.value)) ?? 0) + 1);
    else read.add(tag(op.value));
  }
  return ops.filter((op) => !(op.op === 'write' && op.ret === null &&
    writers.get(tag(op.value)) === 1 && !read.has(tag(op.value)) &&
    tag(op.value) !== tag(initial)));
}

interface Frame {
  readonly state: RegisterValue;
  /** Index into `ops` of the operation linearised to reach this frame (-1 at the root). */
  readonly via: number;
  /** Next candidate to try from this frame. */
  next: number;
}

function checkKey(
  key: string,
  unsorted: readonly RegisterOp[],
  initial: RegisterValue,
  statesMax: number,
): KeyVerdict {
  const ops = [...unsorted].sort((a, b) => a.call - b.call);
  const n = ops.length;
  const retOf = (i: number): number => ops[i]!.ret ?? Number.POSITIVE_INFINITY;
  const completed = ops.filter((o) => o.ret !== null).length;
  const done = new Uint8Array(n);
  // Zobrist hashing of the set of linearised ops (two 32-bit halves): the memo key of a
  // search state is that hash plus the register's value, updated in O(1) per move.
  const zobrist = zobristTable(n);
  let hashLo = 0;
  let hashHi = 0;
  let doneCompleted = 0;
  let firstUndone = 0;
  const seen = new Set<string>();
  const stack: Frame[] = [{ state: initial, via: -1, next: 0 }];
  let longest: number[] = [];
  let explored = 0;
  const flip = (i: number): void => {
    hashLo ^= zobrist[2 * i]!;
    hashHi ^= zobrist[2 * i + 1]!;
  };

  while (stack.length > 0) {
    if (doneCompleted === completed) return { key, verdict: 'ok' };
    const frame = stack[stack.length - 1]!;
    while (firstUndone < n && done[firstUndone] === 1) firstUndone++;
    // The earliest response among ops not yet linearised bounds which ops may go next: an op
    // invoked after some other op returned cannot be linearised before it. Ops are sorted by
    // call and ret >= call, so the scan stops once calls pass the bound.
    let minRet = Number.POSITIVE_INFINITY;
    for (let i = firstUndone; i < n && ops[i]!.call <= minRet; i++) {
      if (done[i] === 0) minRet = Math.min(minRet, retOf(i));
    }
    let advanced = false;
    frame.next = Math.max(frame.next, firstUndone);
    while (frame.next < n) {
      const i = frame.next++;
      const op = ops[i]!;
      if (op.call > minRet) { frame.next = n; break; }
      if (done[i] === 1) continue;
      if (op.op === 'read' && op.value !== frame.state) continue;
      const state = op.op === 'write' ? op.value : frame.state;
      flip(i);
      const memo = `${hashLo}:${hashHi}|${typeof state}:${String(state)}`;
      if (seen.has(memo)) { flip(i); continue; }
      seen.add(memo);
      if (++explored > statesMax) {
        return { key, verdict: 'gaveUp', exploredStates: explored, ops: n };
      }
      done[i] = 1;
      if (op.ret !== null) doneCompleted++;
      stack.push({ state, via: i, next: 0 });
      advanced = true;
      break;
    }
    if (advanced) {
      if (stack.length - 1 > longest.length) longest = stack.slice(1).map((f) => f.via);
      continue;
    }
    stack.pop();
    if (frame.via >= 0) {
      done[frame.via] = 0;
      flip(frame.via);
      firstUndone = Math.min(firstUndone, frame.via);
      if (ops[frame.via]!.ret !== null) doneCompleted--;
    }
  }
  if (doneCompleted === completed) return { key, verdict: 'ok' };
  return {
    key,
    verdict: 'violation',
    counterexample: { history: ops, longestLinearization: longest.map((i) => ops[i]!) },
  };
}

/** Fixed pseudo-random words (xorshift32 from a constant seed), so runs are reproducible. */
function zobristTable(n: number): Uint32Array {
  const table = new Uint32Array(2 * n);
  let x = 0x9e3779b9;
  for (let i = 0; i < table.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    table[i] = x;
  }
  return table;
}

/** One readable line per operation, for failure messages. */
export function describeOps(ops: readonly RegisterOp[]): string {
  return ops.map((o) => `${o.label ?? ''} ${o.op}(${o.key})=${JSON.stringify(o.value)} ` +
    `[${o.call}, ${o.ret ?? 'pending'}]`).join('\n');
}
