// A checked run of the lock table: feeds commands with a virtual clock and, after every
// step, checks the table's answers against rules stated independently of its code:
// no conflicting holders, strictly increasing fencing tokens, FIFO queues, every wait
// answered exactly once by an event, and deadlock iff a naive DFS over the explicit wait-for
// graph finds a cycle. A twin table restored from a snapshot mid-run must answer the same.
import { expect } from 'vitest';
import type { LockCommand, LockEvent, LockMode, LockResult, LockView } from
  '../../src/lock/commands.js';
import { LockTable, type LockLimits } from '../../src/lock/lock-table.js';

export type GenCmd =
  | { kind: 'acquire'; name: string; owner: string; mode: LockMode; ttlMs: number;
      waitMs: number }
  | { kind: 'release'; name: string; owner: string; token: 'none' | 'current' | 'stale' }
  | { kind: 'renew'; name: string; owner: string; ttlMs: number | null }
  | { kind: 'cancelWait'; name: string; owner: string }
  | { kind: 'tick' }
  | { kind: 'extend'; byMs: number };

export interface GenStep {
  readonly dtMs: number;
  readonly cmd: GenCmd;
}

type Graph = Map<string, Set<string>>;

function addEdge(g: Graph, from: string, to: string): void {
  const s = g.get(from) ?? new Set<string>();
  s.add(to);
  g.set(from, s);
}

function conflict(a: LockMode, b: LockMode): boolean {
  return a === 'exclusive' || b === 'exclusive';
}

/** The wait-for graph spelled out from views: a waiter waits on the conflicting holders and
 * on the conflicting waiters ahead of it. */
export function naiveGraph(views: readonly LockView[]): Graph {
  const g: Graph = new Map();
  for (const v of views) {
    v.waiters.forEach((w, i) => {
      for (const h of v.holders) {
        if (h.owner !== w.owner && conflict(h.mode, w.mode)) addEdge(g, w.owner, h.owner);
      }
      for (const a of v.waiters.slice(0, i)) {
        if (conflict(a.mode, w.mode)) addEdge(g, w.owner, a.owner);
      }
    });
  }
  return g;
}

/** Deliberately simple: from every node, recursive DFS with the current path. */
export function naiveHasCycle(g: Graph): boolean {
  const visit = (node: string, path: Set<string>): boolean => {
    if (path.has(node)) return true;
    path.add(node);
    for (const next of g.get(node) ?? []) if (visit(next, path)) return true;
    path.delete(node);
    return false;
  };
  return [...g.keys()].some((n) => visit(n, new Set()));
}

function naiveReaches(g: Graph, from: string, to: string, seen = new Set<string>()): boolean {
  if (from === to) return true;
  if (seen.has(from)) return false;
  seen.add(from);
  return [...(g.get(from) ?? [])].some((n) => naiveReaches(g, n, to, seen));
}

const key = (name: string, owner: string): string => `${name}\u0000${owner}`;

export class CheckedRun {
  table: LockTable;
  twin: LockTable | null = null;
  index = 0;
  nowMs = 10_000;
  maxToken = 0;
  /** Open waits (name, owner) → deadline, from `waiting` results until an event ends them. */
  readonly pending = new Map<string, number>();
  steps = 0;
  /** How often each acquire result occurred, so tests can insist they saw every kind. */
  readonly tally: Record<string, number> = {};

  constructor(readonly limits: Partial<LockLimits>, readonly names: readonly string[]) {
    this.table = new LockTable(limits);
  }

  views(table: LockTable = this.table): LockView[] {
    return this.names.map((n) => table.get(n));
  }

  /** Starts a twin from the current snapshot; from now on it must answer identically. */
  forkTwin(): void {
    const bytes = this.table.snapshot();
    this.twin = LockTable.restore(bytes, this.limits);
    expect(this.twin.snapshot()).toEqual(bytes);
  }

  toCommand(c: GenCmd, before: readonly LockView[]): LockCommand {
    switch (c.kind) {
      case 'acquire':
        return { type: 'acquire', name: c.name, owner: c.owner, mode: c.mode, ttlMs: c.ttlMs,
          waitMs: c.waitMs };
      case 'release': {
        const held = before.find((v) => v.name === c.name)?.holders
          .find((h) => h.owner === c.owner)?.token;
        if (c.token === 'none' || held === undefined) {
          return { type: 'release', name: c.name, owner: c.owner };
        }
        const token = c.token === 'current' ? held : Math.max(1, held - 1);
        return { type: 'release', name: c.name, owner: c.owner, token };
      }
      case 'renew':
        return c.ttlMs === null ? { type: 'renew', name: c.name, owner: c.owner }
          : { type: 'renew', name: c.name, owner: c.owner, ttlMs: c.ttlMs };
      case 'cancelWait':
        return { type: 'cancelWait', name: c.name, owner: c.owner };
      case 'tick':
        return { type: 'tick' };
      case 'extend':
        return { type: 'extendLeases', byMs: c.byMs };
    }
  }

  step(s: GenStep): { result: LockResult; events: LockEvent[] } {
    this.nowMs += s.dtMs;
    this.index += 1;
    this.steps += 1;
    const ctx = { index: this.index, nowMs: this.nowMs };
    const beforeBytes = this.table.snapshot();
    const before = this.views();
    const cmd = this.toCommand(s.cmd, before);
    const out = this.table.apply(cmd, ctx);
    this.table.checkInvariants();
    if (this.twin !== null) expect(this.twin.apply(cmd, ctx)).toEqual(out);
    const after = this.views();
    this.checkHolders(after);
    this.checkTokens(cmd, out.result, out.events, before);
    this.checkFifo(cmd, out.events, before, after);
    this.checkWaits(cmd, out.result, out.events, after);
    this.checkAcquire(cmd, out.result, beforeBytes, ctx);
    expect(naiveHasCycle(naiveGraph(after))).toBe(false);
    return out;
  }

  private checkHolders(after: readonly LockView[]): void {
    for (const v of after) {
      if (v.holders.some((h) => h.mode === 'exclusive')) expect(v.holders.length).toBe(1);
    }
  }

  private checkTokens(cmd: LockCommand, result: LockResult, events: readonly LockEvent[],
    before: readonly LockView[]): void {
    // Events come first: the expiries that run before the command may grant to waiters.
    const grants: { name: string; owner: string; token: number }[] = [];
    for (const e of events) if (e.type === 'granted') grants.push(e);
    if (result.type === 'granted') {
      const held = before.find((v) => v.name === result.name)?.holders
        .find((h) => h.owner === result.owner)?.token;
      // A retry returns the grant it already had (perhaps granted by this very command's
      // expiries, just before it ran); everything else is a new grant.
      const grantedNow = grants.find((g) => g.name === result.name && g.owner === result.owner);
      if (held !== result.token && grantedNow?.token !== result.token) grants.push(result);
    }
    for (const g of grants) {
      expect(g.token).toBeGreaterThan(this.maxToken);
      expect(g.token).toBeGreaterThanOrEqual(this.index);
      this.maxToken = g.token;
    }
  }

  private checkFifo(cmd: LockCommand, events: readonly LockEvent[],
    before: readonly LockView[], after: readonly LockView[]): void {
    before.forEach((b, i) => {
      const a = after[i];
      if (a === undefined) throw new Error('views line up');
      const aOwners = a.waiters.map((w) => w.owner);
      // A wait that an event ended in this command is gone, even if the same owner queues
      // again in the same command (its expiries ran first).
      const ended = new Set(events.filter((e) => e.name === b.name && e.type !== 'expired')
        .map((e) => e.owner));
      const allBefore = b.waiters.map((w) => w.owner);
      const bOwners = allBefore.filter((o) => !ended.has(o));
      // Those that stay keep their relative order.
      expect(aOwners.filter((o) => bOwners.includes(o)))
        .toEqual(bOwners.filter((o) => aOwners.includes(o)));
      const added = aOwners.filter((o) => !bOwners.includes(o));
      expect(added.length).toBeLessThanOrEqual(1);
      const newcomer = added[0];
      if (newcomer !== undefined) {
        expect(cmd).toMatchObject({ type: 'acquire', name: b.name, owner: newcomer });
        const upgrade = a.holders.some((h) => h.owner === newcomer);
        expect(aOwners.indexOf(newcomer)).toBe(upgrade ? 0 : aOwners.length - 1);
      }
      // A waiter is granted only when every waiter ahead of it has left the queue.
      for (const e of events) {
        if (e.type !== 'granted' || e.name !== b.name) continue;
        const at = allBefore.indexOf(e.owner);
        expect(at).toBeGreaterThanOrEqual(0);
        expect(allBefore.slice(0, at).filter((o) => bOwners.includes(o))).toEqual([]);
      }
    });
  }

  private checkWaits(cmd: LockCommand, result: LockResult, events: readonly LockEvent[],
    after: readonly LockView[]): void {
    for (const e of events) {
      if (e.type === 'expired') continue;
      const k = key(e.name, e.owner);
      const deadline = this.pending.get(k);
      expect(deadline, `event ${JSON.stringify(e)} answers an open wait`).toBeDefined();
      if (e.type === 'waitTimedOut') expect(deadline).toBeLessThanOrEqual(this.nowMs);
      this.pending.delete(k);
    }
    if (result.type === 'waiting') {
      this.pending.set(key(result.name, result.owner), result.deadline);
      expect(result.deadline).toBeGreaterThan(this.nowMs);
    }
    if (result.type === 'granted') {
      const v = after.find((x) => x.name === result.name);
      expect(v?.holders).toContainEqual({ owner: result.owner, mode: result.mode,
        token: result.token, expiresAt: result.expiresAt });
    }
    const open = after.flatMap((v) => v.waiters.map((w) => key(v.name, w.owner))).sort();
    expect(open).toEqual([...this.pending.keys()].sort());
  }

  /** Deadlock iff the naive graph, with the request queued where it would go, has a cycle
   * through the requester; and a refused request changes nothing. */
  private checkAcquire(cmd: LockCommand, result: LockResult, beforeBytes: Uint8Array,
    ctx: { index: number; nowMs: number }): void {
    if (cmd.type !== 'acquire') return;
    this.tally[result.type] = (this.tally[result.type] ?? 0) + 1;
    // The state the request met: the same expiries applied, nothing else.
    const met = LockTable.restore(beforeBytes, this.limits);
    met.apply({ type: 'tick' }, ctx);
    const metView = met.get(cmd.name);
    const held = metView.holders.find((h) => h.owner === cmd.owner);
    if (result.type === 'granted' && held === undefined) {
      // A fresh grant: nobody was queued (FIFO, no writer starvation) and nobody conflicts.
      expect(metView.waiters).toEqual([]);
      expect(metView.holders.every((h) => !conflict(h.mode, cmd.mode))).toBe(true);
    }
    if (result.type === 'granted' && held !== undefined && held.token !== result.token) {
      // An upgrade: it was the only holder.
      expect([held.mode, cmd.mode, metView.holders.length]).toEqual(['shared', 'exclusive', 1]);
    }
    if (result.type === 'timeout') expect(cmd.waitMs).toBe(0);
    if (result.type !== 'deadlock' && result.type !== 'waiting') return;
    const views = this.views(met).map((v) => {
      if (v.name !== cmd.name || v.waiters.some((w) => w.owner === cmd.owner)) return v;
      const w = { owner: cmd.owner, mode: cmd.mode };
      const upgrade = v.holders.some((h) => h.owner === cmd.owner);
      return { ...v, waiters: upgrade ? [w, ...v.waiters] : [...v.waiters, w] };
    });
    const g = naiveGraph(views);
    const cyclic = [...(g.get(cmd.owner) ?? [])].some((n) => naiveReaches(g, n, cmd.owner));
    expect(cyclic, `deadlock answer ${JSON.stringify(result)}`).toBe(result.type === 'deadlock');
    if (result.type !== 'deadlock') return;
    expect(this.table.snapshot()).toEqual(met.snapshot());
    expect(result.cycle[0]).toBe(cmd.owner);
    result.cycle.forEach((o, i) => {
      const next = result.cycle[(i + 1) % result.cycle.length] ?? '';
      expect(g.get(o)?.has(next), `edge ${o} → ${next}`).toBe(true);
    });
  }

  /** Lets time run past every deadline with ticks only: every open wait must be answered and
   * every lease must end, within a bounded number of ticks. */
  drain(): void {
    for (let i = 0; i < 1000; i++) {
      const next = this.table.nextDeadline();
      if (next === null) break;
      this.step({ dtMs: Math.max(0, next - this.nowMs), cmd: { kind: 'tick' } });
    }
    expect(this.pending.size).toBe(0);
    expect(this.table.stats()).toMatchObject({ locks: 0, holders: 0, waiters: 0, owners: 0 });
    if (this.twin !== null) expect(this.twin.snapshot()).toEqual(this.table.snapshot());
  }
}
