// A seeded, single-process world for the coherence core: 3–5 pods over a simulated network
// (delay, reordering, loss, partitions), a simulated backing store with latency, per-pod
// clocks with bounded rate drift, clients issuing reads/writes/deletes, and pod restarts
// (crash in write-through worlds, sometimes with the data dir lost; graceful in write-back
// worlds: write-back by design loses the dirty lines of a crashed pod). A restarted pod is
// told what its shell would tell it (incarnation.ts: a missing or unclean record means
// copies of the earlier life may be left). Every step checks the single-writer invariant
// and, in write-through worlds, that no grant carries a version the store does not hold;
// the client history is kept for the linearizability checker. runCoherenceSeed runs one seed.

import { seededRand, type Rand } from '../../src/raft/rand.js';
import { CoherenceNode } from '../../src/cache/coherence.js';
import type { WritePolicy } from '../../src/cache/coherence-config.js';
import { priorCopiesOf, type IncarnationRecord } from '../../src/cache/incarnation.js';
import {
  describeMsg, type CacheValue, type CoherenceEffect, type CoherenceMsg, type OpResult,
} from '../../src/cache/coherence-messages.js';
import { HashRing } from '../../src/ring/hash-ring.js';
import {
  checkLinearizable, describeReport, type GaveUp, type RegisterOp,
} from '../support/linearizability.js';

export interface WorldParams {
  readonly pods: number;
  readonly keys: number;
  readonly lossRate: number;
  readonly duplicateRate: number;
  readonly delayMaxMs: number;
  readonly writePolicy: WritePolicy;
  readonly capacityBytes: number;
  readonly restartsPerSecond: number;
  readonly partitionsPerSecond: number;
  readonly clientsPerPod: number;
  /** Clock rate error bound, within the core's documented assumption. */
  readonly driftRatio: number;
  /** Share of crash restarts that also lose the pod's data dir (its incarnation record). */
  readonly lostDataDirShare: number;
  /** Longest backing store call, ms. */
  readonly storeDelayMaxMs: number;
  /** Passed to every pod when set (the core must refuse a value below the lease). */
  readonly startupGraceMs?: number;
}

export const STEP_MS = 5;
const LEASE_MS = 1000;
const DRIFT_MARGIN_MS = 60;

export function paramsFromSeed(seed: number): WorldParams {
  const r = seededRand(seed ^ 0x5eed);
  return {
    pods: r.int(3, 6),
    keys: r.int(1, 5),
    lossRate: r.next() < 0.3 ? 0 : r.next() * 0.15,
    duplicateRate: r.next() < 0.5 ? 0 : r.next() * 0.05,
    delayMaxMs: r.int(1, 60),
    writePolicy: r.next() < 0.5 ? 'write-through' : 'write-back',
    capacityBytes: r.next() < 0.4 ? r.int(150, 400) : 64 * 1024,
    restartsPerSecond: r.next() < 0.3 ? 0 : r.next() * 0.6,
    partitionsPerSecond: r.next() < 0.3 ? 0 : r.next() * 1.0,
    clientsPerPod: r.int(1, 3),
    driftRatio: r.next() * 0.02,
    // Not drawn from `r`: the worlds of earlier seeds stay as they were.
    lostDataDirShare: 0.3,
    storeDelayMaxMs: 20,
  };
}

interface InFlight {
  readonly at: number;
  readonly from: string;
  readonly to: string;
  readonly toInc: number;
  readonly msg: CoherenceMsg;
  readonly order: number;
}

interface StoreOp {
  readonly at: number;
  readonly pod: string;
  readonly inc: number;
  readonly kind: 'load' | 'write';
  readonly key: string;
  readonly value: CacheValue;
  readonly version: number;
}

interface Pod {
  readonly id: string;
  node: CoherenceNode | null;
  incarnation: number;
  /** Crashed/restarting until then (sim time). */
  downUntil: number;
  draining: boolean;
  readonly clockOffsetMs: number;
  readonly clockRate: number;
  /** Latest store completion time, to keep one pod's store ops in order. */
  storeTail: number;
  partitionedUntil: number;
  /** What the pod's incarnation file will say at its next start. */
  record: IncarnationRecord;
}

interface Client {
  readonly id: string;
  readonly pod: Pod;
  pending: { reqId: string; histIndex: number; inc: number } | null;
  seq: number;
}

export class World {
  readonly rand: Rand;
  readonly params: WorldParams;
  readonly pods: Pod[] = [];
  readonly keys: string[];
  readonly history: RegisterOp[] = [];
  readonly trace: string[] = [];
  private readonly clients: Client[] = [];
  private readonly ring: HashRing;
  private net: InFlight[] = [];
  private storeOps: StoreOp[] = [];
  private readonly store = new Map<string, { value: CacheValue; version: number }>();
  private orderCounter = 0;
  private reqCounter = 0;
  timeMs = 0;
  faults = true;
  /** Per-pod successful operations and failures, reset by the caller between phases. */
  completedByPod = new Map<string, number>();
  failedSince = 0;
  stats = { sent: 0, lost: 0, restarts: 0, completed: 0, failed: 0, evictions: 0, hits: 0,
    lostDataDirs: 0 };
  /** Write-through grants of a version the store did not hold yet. */
  private readonly undurableGrants: string[] = [];

  /** `node` is the coherence core the pods run: CoherenceNode, or a variant with a planted
   * bug (test/support/mutant.ts). */
  constructor(readonly seed: number, private readonly tracing = false, params?: WorldParams,
    private readonly node: typeof CoherenceNode = CoherenceNode) {
    this.rand = seededRand(seed);
    this.params = params ?? paramsFromSeed(seed);
    this.keys = Array.from({ length: this.params.keys }, (_, i) => `k${i}`);
    const ids = Array.from({ length: this.params.pods }, (_, i) => `cache-${i}`);
    this.ring = new HashRing(ids, { vnodesPerNode: 16 });
    for (const id of ids) {
      const pod: Pod = {
        id, node: null, incarnation: 0, downUntil: 0, draining: false, storeTail: 0,
        clockOffsetMs: this.rand.int(0, 1_000_000),
        clockRate: 1 + (this.rand.next() * 2 - 1) * this.params.driftRatio,
        partitionedUntil: 0, record: 'missing',
      };
      this.pods.push(pod);
      for (let c = 0; c < this.params.clientsPerPod; c++) {
        this.clients.push({ id: `${id}/c${c}`, pod, pending: null, seq: 0 });
      }
    }
    for (const pod of this.pods) this.start(pod);
  }

  localNow(pod: Pod): number {
    return pod.clockOffsetMs + Math.floor(this.timeMs * pod.clockRate);
  }

  private start(pod: Pod): void {
    pod.incarnation++;
    pod.draining = false;
    const grace = this.params.startupGraceMs;
    pod.node = new this.node({
      self: pod.id, incarnation: pod.incarnation, homeOf: (k) => this.ring.ownerOf(k)!,
      nowMs: this.localNow(pod), leaseMs: LEASE_MS, driftMarginMs: DRIFT_MARGIN_MS,
      retryMs: 150, requestTimeoutMs: 1500, flushIntervalMs: 200,
      writePolicy: this.params.writePolicy, capacityBytes: this.params.capacityBytes,
      entryOverheadBytes: 64, valueBytesMax: 64, keyBytesMax: 16, homeQueuePerKeyMax: 16,
      opsPerKeyMax: 8, writebacksMax: 4, priorCopies: priorCopiesOf(pod.record),
      peers: this.pods.map((p) => p.id).filter((id) => id !== pod.id),
      ...(grace === undefined ? {} : { startupGraceMs: grace }),
    });
    this.log(`${pod.id} starts as incarnation ${pod.incarnation} (record ${pod.record})`);
    pod.record = 'unclean';
  }

  /** The home of `key` (the same ring every pod uses). */
  homeOf(key: string): string {
    return this.ring.ownerOf(key)!;
  }

  log(line: string): void {
    if (!this.tracing) return;
    this.trace.push(`${this.timeMs}ms ${line}`);
  }

  /** One step of STEP_MS: deliver, complete store ops, tick, issue client ops, faults. */
  step(): void {
    this.timeMs += STEP_MS;
    this.deliverDue();
    this.completeStoreOps();
    for (const pod of this.pods) {
      if (pod.node === null) {
        if (this.timeMs >= pod.downUntil) this.start(pod);
        else continue;
      }
      pod.node!.tick(this.localNow(pod));
      this.collect(pod);
      if (pod.draining) this.maybeFinishDrain(pod);
    }
    for (const client of this.clients) this.maybeIssue(client);
    if (this.faults) this.injectFaults();
  }

  private deliverDue(): void {
    if (!this.net.some((m) => m.at <= this.timeMs)) return;
    const due = this.net.filter((m) => m.at <= this.timeMs)
      .sort((a, b) => a.at - b.at || a.order - b.order);
    this.net = this.net.filter((m) => m.at > this.timeMs);
    for (const m of due) {
      const pod = this.pod(m.to);
      const from = this.pod(m.from);
      if (pod.node === null || this.cut(pod) || this.cut(from)) continue;
      pod.node.tick(this.localNow(pod));
      pod.node.receive(m.from, m.msg);
      this.collect(pod);
    }
  }

  private cut(pod: Pod): boolean {
    return this.faults && pod.partitionedUntil > this.timeMs;
  }

  private completeStoreOps(): void {
    if (!this.storeOps.some((o) => o.at <= this.timeMs)) return;
    const due = this.storeOps.filter((o) => o.at <= this.timeMs);
    this.storeOps = this.storeOps.filter((o) => o.at > this.timeMs);
    for (const op of due) {
      if (op.kind === 'write') {
        // The shell writes conditionally (newer versions only), as a Redis script would.
        const cur = this.store.get(op.key);
        if (cur === undefined || cur.version < op.version) {
          this.store.set(op.key, { value: op.value, version: op.version });
        }
      }
      const pod = this.pod(op.pod);
      if (pod.node === null || pod.incarnation !== op.inc) continue;
      pod.node.tick(this.localNow(pod));
      if (op.kind === 'load') {
        const cur = this.store.get(op.key) ?? { value: null, version: 0 };
        pod.node.storeLoaded(op.key, cur.value, cur.version);
      } else {
        pod.node.storeWritten(op.key, op.version);
      }
      this.collect(pod);
    }
  }

  private collect(pod: Pod): void {
    const node = pod.node;
    if (node === null) return;
    for (const e of node.drain()) this.perform(pod, e);
  }

  private perform(pod: Pod, e: CoherenceEffect): void {
    switch (e.type) {
      case 'send': {
        this.stats.sent++;
        if (e.msg.type === 'data' && this.params.writePolicy === 'write-through') {
          const stored = this.store.get(e.msg.key)?.version ?? 0;
          if (e.msg.version > stored) {
            this.undurableGrants.push(`${pod.id} granted ${e.msg.key} v${e.msg.version} to ` +
              `${e.to} while the store held v${stored}, at ${this.timeMs}ms`);
          }
        }
        if (this.faults && this.rand.next() < this.params.lossRate) {
          this.stats.lost++;
          return;
        }
        const copies = this.faults && this.rand.next() < this.params.duplicateRate ? 2 : 1;
        for (let i = 0; i < copies; i++) {
          const at = this.timeMs + this.rand.int(1, this.params.delayMaxMs + 1);
          this.net.push({ at, from: pod.id, to: e.to, toInc: e.msg.toInc, msg: e.msg,
            order: this.orderCounter++ });
        }
        if (this.tracing) this.log(`${pod.id} → ${e.to}: ${describeMsg(e.msg)}`);
        return;
      }
      case 'reply':
        this.onReply(e.reqId, e.result);
        return;
      case 'storeLoad':
      case 'storeWrite': {
        pod.storeTail = Math.max(pod.storeTail, this.timeMs) +
          this.rand.int(1, this.params.storeDelayMaxMs);
        this.storeOps.push({ at: pod.storeTail, pod: pod.id, inc: pod.incarnation,
          kind: e.type === 'storeLoad' ? 'load' : 'write', key: e.key,
          value: e.type === 'storeWrite' ? e.value : null,
          version: e.type === 'storeWrite' ? e.version : 0 });
        return;
      }
    }
  }

  private maybeIssue(client: Client): void {
    const pod = client.pod;
    if (client.pending !== null || pod.node === null || pod.draining) return;
    if (this.rand.next() < 0.7) return;
    const key = this.keys[this.rand.int(0, this.keys.length)]!;
    const roll = this.rand.next();
    this.issue(client, roll < 0.5 ? 'read' : roll < 0.9 ? 'write' : 'delete', key);
  }

  /** A scripted operation through `podId` (worlds built with clientsPerPod 0); its outcome
   * lands in the history like any other. */
  submit(podId: string, kind: 'read' | 'write' | 'delete', key: string): void {
    const pod = this.pod(podId);
    const id = `${podId}/script`;
    let client = this.clients.find((c) => c.id === id);
    if (client === undefined) {
      client = { id, pod, pending: null, seq: 0 };
      this.clients.push(client);
    }
    if (client.pending !== null) throw new Error(`${id} still waits for its last operation`);
    this.issue(client, kind, key);
  }

  private issue(client: Client, kind: 'read' | 'write' | 'delete', key: string): void {
    const pod = client.pod;
    const node = pod.node!;
    const reqId = `${client.id}#${++this.reqCounter}`;
    const histIndex = this.history.length;
    if (kind === 'read') {
      this.history.push({ op: 'read', key, value: null, call: this.timeMs, ret: null,
        label: reqId });
      node.read(reqId, key);
    } else if (kind === 'write') {
      const value = JSON.stringify(`${client.id}:${++client.seq}`);
      this.history.push({ op: 'write', key, value, call: this.timeMs, ret: null, label: reqId });
      node.write(reqId, key, value);
    } else {
      this.history.push({ op: 'write', key, value: null, call: this.timeMs, ret: null,
        label: `${reqId} (delete)` });
      node.delete(reqId, key);
    }
    client.pending = { reqId, histIndex, inc: pod.incarnation };
    this.collect(pod);
  }

  private onReply(reqId: string, result: OpResult): void {
    const client = this.clients.find((c) => c.pending?.reqId === reqId);
    if (client === undefined) throw new Error(`reply to unknown request ${reqId}`);
    const { histIndex } = client.pending!;
    client.pending = null;
    const op = this.history[histIndex]!;
    if (result.type === 'error') {
      this.stats.failed++;
      this.failedSince++;
      // Operations that failed before taking effect leave the history; an indeterminate
      // write stays pending (it may or may not have happened).
      if (result.error.code !== 'INDETERMINATE') this.history[histIndex] = { ...op, ret: -1 };
      return;
    }
    this.stats.completed++;
    const podId = client.pod.id;
    this.completedByPod.set(podId, (this.completedByPod.get(podId) ?? 0) + 1);
    if (result.type === 'read') {
      if (result.hit) this.stats.hits++;
      this.history[histIndex] = { ...op, value: result.value, ret: this.timeMs };
    } else {
      this.history[histIndex] = { ...op, ret: this.timeMs };
    }
  }

  private injectFaults(): void {
    const perStep = STEP_MS / 1000;
    if (this.rand.next() < this.params.restartsPerSecond * perStep) {
      const pod = this.pods[this.rand.int(0, this.pods.length)]!;
      if (pod.node !== null && !pod.draining) this.beginRestart(pod);
    }
    if (this.rand.next() < this.params.partitionsPerSecond * perStep) {
      const pod = this.pods[this.rand.int(0, this.pods.length)]!;
      pod.partitionedUntil = this.timeMs + this.rand.int(100, 2500);
      this.log(`${pod.id} partitioned until ${pod.partitionedUntil}ms`);
    }
  }

  private beginRestart(pod: Pod): void {
    this.stats.restarts++;
    if (this.params.writePolicy === 'write-through') {
      this.crash(pod, this.rand.next() < this.params.lostDataDirShare);
    } else {
      // Graceful: stop taking requests, take every copy home, wait for the store.
      pod.draining = true;
      pod.node!.beginDrain();
      this.collect(pod);
      this.log(`${pod.id} drains for a graceful restart`);
    }
  }

  private maybeFinishDrain(pod: Pod): void {
    const node = pod.node!;
    const clientsIdle = this.clients.every((c) => c.pod !== pod || c.pending === null);
    const storeIdle = !this.storeOps.some((o) => o.pod === pod.id && o.inc === pod.incarnation);
    if (clientsIdle && storeIdle && node.drained()) {
      this.crash(pod);
      // The shell records a drained life as clean.
      pod.record = 'clean';
    }
  }

  /** kill -9 of `pod` (and, with `lostDataDir`, of its volume: the record is gone). */
  crash(pod: Pod, lostDataDir = false): void {
    this.log(`${pod.id} stops (incarnation ${pod.incarnation})` +
      (lostDataDir ? ', its data dir lost' : ''));
    if (lostDataDir) {
      this.stats.lostDataDirs++;
      pod.record = 'missing';
    }
    pod.node = null;
    pod.draining = false;
    pod.downUntil = this.timeMs + this.rand.int(20, 400);
    for (const c of this.clients) {
      if (c.pod !== pod || c.pending === null) continue;
      // The outcome of an interrupted operation is unknown: it stays pending.
      c.pending = null;
    }
  }

  pod(id: string): Pod {
    const pod = this.pods.find((p) => p.id === id);
    if (pod === undefined) throw new Error(`no pod ${id}`);
    return pod;
  }

  /** At most one valid M/E copy per key, and never beside a valid S copy. */
  checkSingleWriter(): string | null {
    for (const key of this.keys) {
      const holders: string[] = [];
      let exclusive = 0;
      for (const pod of this.pods) {
        const line = pod.node?.inspectLine(key);
        if (line == null || !line.valid) continue;
        holders.push(`${pod.id}:${line.state}`);
        if (line.state !== 'S') exclusive++;
      }
      if (exclusive > 1 || (exclusive === 1 && holders.length > 1)) {
        return `key ${key} held as ${holders.join(', ')} at ${this.timeMs}ms`;
      }
    }
    return null;
  }

  /** Write-through: every grant carries a version the store already holds, so no reader can
   * see a value that a crash could still take back. */
  checkWriteThroughGrants(): string | null {
    return this.undurableGrants[0] ?? null;
  }

  /** Completed or pending operations, failures removed. */
  checkedHistory(): RegisterOp[] {
    return this.history.filter((o) => o.ret !== -1);
  }

  pendingClients(): number {
    return this.clients.filter((c) => c.pending !== null).length;
  }

  inFlightMessages(): number {
    return this.net.length;
  }
}

// ---- one seed, both phases ---------------------------------------------------------------

const FAULT_MS = 6000;
const HEAL_MS = 4000;
/** Healed time after which every operation must succeed: longer than the request timeout
 * and a restarted home's grace period together. */
const SETTLE_MS = 3000;

export interface CoherenceOutcome {
  /** Why the seed failed, or null. */
  readonly error: string | null;
  readonly world: World;
  /** Keys whose history the linearizability search gave up on (not a failure by itself). */
  readonly gaveUp: readonly GaveUp[];
}

/** A fault phase checking the single-writer invariant after every step, a healed phase that
 * requires progress on every pod, then the linearizability of every key's history. */
export function runCoherenceSeed(seed: number, tracing = false,
  node: typeof CoherenceNode = CoherenceNode): CoherenceOutcome {
  const world = new World(seed, tracing, undefined, node);
  const fail = (why: string): CoherenceOutcome => ({ error: why, world, gaveUp: [] });
  for (let t = 0; t < FAULT_MS; t += STEP_MS) {
    world.step();
    const broken = world.checkSingleWriter();
    if (broken !== null) return fail(`single-writer invariant: ${broken}`);
    const undurable = world.checkWriteThroughGrants();
    if (undurable !== null) return fail(`write-through gate: ${undurable}`);
  }
  // Liveness: heal everything; once settled, every operation on every pod must succeed.
  world.faults = false;
  for (let t = 0; t < HEAL_MS; t += STEP_MS) {
    if (t === SETTLE_MS) {
      world.completedByPod.clear();
      world.failedSince = 0;
    }
    world.step();
    const broken = world.checkSingleWriter();
    if (broken !== null) return fail(`single-writer invariant (healed): ${broken}`);
    const undurable = world.checkWriteThroughGrants();
    if (undurable !== null) return fail(`write-through gate (healed): ${undurable}`);
  }
  // Every pod completes operations; a few may still time out when many clients hammer one
  // key (queueing, not a stuck protocol), but a stuck key fails all its operations.
  const idle = world.pods.filter((p) => (world.completedByPod.get(p.id) ?? 0) === 0);
  const completed = [...world.completedByPod.values()].reduce((a, b) => a + b, 0);
  if (world.failedSince > completed / 10 || idle.length > 0) {
    return fail(`no progress after healing: ${world.failedSince} failed operations, ` +
      `pods without a completed operation: ${idle.map((p) => p.id).join(', ')}`);
  }
  // Every key is checked; any violation fails the seed, give-ups are reported to the caller.
  const report = checkLinearizable(world.checkedHistory(), { statesMax: 100_000 });
  if (report.violations.length > 0) return fail(describeReport({ ...report, gaveUp: [] }));
  return { error: null, world, gaveUp: report.gaveUp };
}
