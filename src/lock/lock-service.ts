// The lock service on one node: turns API calls into lock-table commands proposed through
// Raft, keeps blocking acquires open until an applied event answers them, and does the
// leader's duty of expiring leases and wait deadlines on time. (Extending every lease when a
// leader takes office is the state machine's leaderStartCommands: the runtime proposes it
// before anything else of the term.)
import type { Logger } from 'pino';
import { DsyncError, UnavailableError } from '../errors.js';
import type { RaftGroup } from '../runtime/raft-group.js';
import type {
  LockCommand, LockEvent, LockResult, LockView,
} from './commands.js';
import { InflightAcquires } from './lock-admission.js';
import { LockStateMachine } from './lock-state-machine.js';
import type { LockMetrics } from './lock-metrics.js';

export interface LockServiceOptions {
  readonly group: RaftGroup;
  readonly sm: LockStateMachine;
  readonly logger: Logger;
  readonly metrics: LockMetrics;
  /** How long a proposal may take before the call fails as indeterminate. */
  readonly requestTimeoutMs: number;
  /** Blocking acquires open on this node at most (back-pressure beyond). */
  readonly waitingRequestsMax: number;
  /** How often the leader checks for due leases and wait deadlines. */
  readonly dutyIntervalMs: number;
}

/** An acquire as the routes validated it: the command without its type tag. */
export type AcquireRequest = Omit<Extract<LockCommand, { type: 'acquire' }>, 'type'>;

/** What a granted acquire answers (API.md): the `granted` result without its tag. */
export type Grant = Omit<Extract<LockResult, { type: 'granted' }>, 'type'>;

interface Waiting {
  settle(r: LockResult): void;
}

const keyOf = (name: string, owner: string): string => `${name}\u0000${owner}`;
/** Past the wait deadline, how long we wait for the leader's answer before giving up. */
const WAIT_GRACE_MS = 5_000;

export class LockService {
  private readonly waiting = new Map<string, Set<Waiting>>();
  private waitingCount = 0;
  /** Acquires proposed here and not yet applied: what the early refusal counts. */
  private readonly inflight = new InflightAcquires();
  private dutyTimer: NodeJS.Timeout | null = null;
  private dutyInFlight = false;

  constructor(private readonly o: LockServiceOptions) {
    o.sm.onEvents((events) => this.onEvents(events));
  }

  start(): void {
    this.dutyTimer = setInterval(() => void this.leaderDuties(), this.o.dutyIntervalMs);
  }

  stop(): void {
    if (this.dutyTimer) clearInterval(this.dutyTimer);
    this.dutyTimer = null;
    for (const set of this.waiting.values()) {
      for (const w of set) w.settle({ type: 'exhausted', limit: 'locks', max: 0 });
    }
  }

  /** `signal` (or what makes it, called only if the acquire has to wait) reports the client
   * going away, which cancels a wait. */
  async acquire(req: AcquireRequest, clientId: string,
    signal?: AbortSignal | (() => AbortSignal)): Promise<Grant> {
    const key = keyOf(req.name, req.owner);
    if (req.waitMs > 0 && this.waitingCount >= this.o.waitingRequestsMax) {
      throw new DsyncError('RESOURCE_EXHAUSTED', `this node has ${this.waitingCount} blocking ` +
        'acquires open; retry later or use a shorter waitMs', { retryable: true });
    }
    const cmd: LockCommand = { type: 'acquire', ...req };
    // What a bound refuses stays out of the log: the table would only answer `exhausted`.
    const table = this.o.sm.table;
    const refused = table.refusal(cmd, this.inflight);
    if (refused !== null) {
      this.o.metrics.refusedEarly.inc({ limit: refused.limit });
      throw this.toError(refused);
    }
    const unreserve = this.inflight.reserve(req.name, req.owner,
      !table.isInLock(req.name, req.owner), !table.hasLock(req.name));
    // Register before proposing: the grant can be applied before the proposal's promise
    // continues (same Ready batch).
    let settle!: (r: LockResult) => void;
    const answered = new Promise<LockResult>((res) => { settle = res; });
    const w: Waiting = { settle };
    this.addWaiting(key, w);
    const t0 = process.hrtime.bigint();
    try {
      // A blocking acquire may take as long as it may wait to be queued, too: its deadline
      // counts from when it was proposed (the leader's clock in the entry), so a slow commit
      // does not make it wait longer, and failing it at requestTimeoutMs would leave a waiter
      // queued that nobody waits for.
      const first = await this.propose(cmd, clientId, req.requestId,
        this.o.requestTimeoutMs + req.waitMs).finally(unreserve);
      let result = first;
      if (first.type === 'waiting') {
        result = await this.awaitAnswer(answered, req,
          typeof signal === 'function' ? signal() : signal);
      }
      this.o.metrics.waitSeconds.observe(Number(process.hrtime.bigint() - t0) / 1e9);
      return this.grantOrThrow(result);
    } finally {
      this.removeWaiting(key, w);
    }
  }

  async release(name: string, owner: string, token: number | undefined): Promise<void> {
    const r = await this.propose({ type: 'release', name, owner,
      ...(token === undefined ? {} : { token }) });
    if (r.type !== 'released') throw this.toError(r);
  }

  async renew(name: string, owner: string, ttlMs: number | undefined): Promise<number> {
    const r = await this.propose({ type: 'renew', name, owner,
      ...(ttlMs === undefined ? {} : { ttlMs }) });
    if (r.type !== 'renewed') throw this.toError(r);
    return r.expiresAt;
  }

  async get(name: string): Promise<LockView> {
    await this.o.group.read(this.o.requestTimeoutMs);
    return this.o.sm.table.get(name);
  }

  async list(prefix: string, max: number): Promise<LockView[]> {
    await this.o.group.read(this.o.requestTimeoutMs);
    return this.o.sm.table.list(prefix, max);
  }

  // ---- internals ----------------------------------------------------------------------

  private async propose(cmd: LockCommand, clientId?: string, requestId?: string,
    timeoutMs = this.o.requestTimeoutMs): Promise<LockResult> {
    const r = await this.o.group.propose(LockStateMachine.encode(cmd), {
      timeoutMs,
      ...(clientId !== undefined && requestId !== undefined ? { clientId, requestId } : {}),
    });
    return r as LockResult;
  }

  private async awaitAnswer(answered: Promise<LockResult>, req: AcquireRequest,
    signal?: AbortSignal): Promise<LockResult> {
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const guard = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UnavailableError(
        'no answer from the leader past the wait deadline; the outcome is unknown: ' +
        'acquire again with the same owner (idempotent) or release')), req.waitMs + WAIT_GRACE_MS);
      onAbort = (): void => {
        reject(new DsyncError('TIMEOUT', 'client went away'));
        void this.cancelIfLast(req.name, req.owner);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([answered, guard]);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  private async cancelIfLast(name: string, owner: string): Promise<void> {
    const set = this.waiting.get(keyOf(name, owner));
    if (set && set.size > 1) return;
    try {
      await this.propose({ type: 'cancelWait', name, owner });
    } catch (err) {
      this.o.logger.warn({ err, name, owner }, 'could not cancel an abandoned wait; ' +
        'it ends at its deadline');
    }
  }

  private grantOrThrow(r: LockResult): Grant {
    if (r.type !== 'granted') throw this.toError(r);
    // A grant is only worth answering while its lease runs: one that committed (or was
    // handed over) after its lease ran out must not reach a client as if it held the lock.
    if (r.expiresAt <= this.o.group.now()) {
      throw new UnavailableError('the grant committed after its lease had run out (the ' +
        'cluster was slow or changing leader); acquire again with the same owner');
    }
    this.o.metrics.grants.inc();
    return { name: r.name, owner: r.owner, mode: r.mode, token: r.token, expiresAt: r.expiresAt };
  }

  private toError(r: LockResult): DsyncError {
    switch (r.type) {
      case 'timeout':
        return new DsyncError('LOCK_TIMEOUT',
          'lock not granted within waitMs; retry later or pass a larger waitMs');
      case 'deadlock':
        this.o.metrics.deadlocks.inc();
        return new DsyncError('DEADLOCK', `granting would close a wait-for cycle ` +
          `(${r.cycle.join(' → ')}); release a lock you hold and retry`, { details: { cycle: r.cycle } });
      case 'notHeld':
        return new DsyncError('NOT_HELD', r.reason === 'expired'
          ? 'the lease expired before this call; acquire the lock again'
          : r.reason === 'stale_token'
            ? 'that token belongs to an older grant; the lock was granted again since'
            : 'this owner does not hold the lock', { details: { reason: r.reason } });
      case 'exhausted':
        return new DsyncError('RESOURCE_EXHAUSTED', `limit ${r.limit} (${r.max}) reached; ` +
          'release locks or raise the limit', { retryable: true, details: { limit: r.limit, max: r.max } });
      default:
        return new DsyncError('INTERNAL', `unexpected lock result ${r.type}`);
    }
  }

  private addWaiting(key: string, w: Waiting): void {
    let set = this.waiting.get(key);
    if (!set) this.waiting.set(key, (set = new Set()));
    set.add(w);
    this.waitingCount++;
  }

  private removeWaiting(key: string, w: Waiting): void {
    const set = this.waiting.get(key);
    if (!set?.delete(w)) return;
    this.waitingCount--;
    if (set.size === 0) this.waiting.delete(key);
  }

  private onEvents(events: readonly LockEvent[]): void {
    const leader = this.o.group.isLeader();
    for (const e of events) {
      if (e.type === 'expired') {
        if (leader) this.o.metrics.expiries.inc();
        continue;
      }
      const set = this.waiting.get(keyOf(e.name, e.owner));
      if (!set) continue;
      const r: LockResult = e.type === 'granted'
        ? { type: 'granted', name: e.name, owner: e.owner, mode: e.mode, token: e.token,
            expiresAt: e.expiresAt }
        : { type: 'timeout' };
      for (const w of set) w.settle(r);
    }
  }

  private async leaderDuties(): Promise<void> {
    const g = this.o.group;
    if (this.dutyInFlight || !g.isLeader()) return;
    this.dutyInFlight = true;
    try {
      const due = this.o.sm.table.nextDeadline();
      if (due !== null && due <= g.now()) await this.propose({ type: 'tick' });
    } catch (err) {
      this.o.logger.debug({ err }, 'leader duty did not complete; will retry');
    } finally {
      this.dutyInFlight = false;
    }
  }
}
