// Planted bugs: variants of the queue partition made here (by patching one instance, not by
// hooks in the production code), each breaking one rule. Each must be caught by the Raft
// simulation's checks within a few seeds, and by the check that names its rule when the
// rules run alone (without the model, as a black-box test would); the failing seed is
// printed. With the model on, the first sign may be another check (an extra delivery is
// preceded by a lease end that should have dead-lettered).
import { describe, expect, it } from 'vitest';
import type { QueueCommand, QueueResult } from '../../src/queue/partition-commands.js';
import { QueuePartition } from '../../src/queue/partition.js';
import { decode, encode } from '../../src/runtime/envelope.js';
import type { PartitionFactory } from '../sim/queue-workload.js';
import { runQueueSeeds } from './partition-sim-run.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- the variants reach into privates */
type Patch = (p: any) => void;

function variant(patch: Patch): PartitionFactory {
  return {
    create: (opts) => {
      const p = new QueuePartition(opts);
      patch(p);
      return p;
    },
    restore: (image, opts) => {
      const p = QueuePartition.restore(image, opts);
      patch(p);
      return p;
    },
  };
}

/** Runs seeds until one fails; returns its first line (with the seed). */
function firstFailure(factory: PartitionFactory, rulesOnly = false, seedsMax = 60): string {
  for (let seed = 1; seed <= seedsMax; seed++) {
    const failure = runQueueSeeds(seed, 1, factory, undefined, rulesOnly).failures[0];
    if (failure !== undefined) {
      console.log(`planted bug caught: ${(failure.split('\n')[0] ?? '').slice(0, 200)}`);
      return failure;
    }
  }
  return `no failure in seeds 1..${seedsMax}`;
}

describe('planted bugs are caught by the queue simulation', () => {
  it('a publish that answers an id but keeps no message: lost', () => {
    const dropsEveryFourth: Patch = (p) => {
      const publishOne = p.publishOne.bind(p);
      p.publishOne = (t: unknown, m: unknown): number => {
        const seq: number = p.s.nextSeq;
        if (seq % 4 !== 0) return publishOne(t, m);
        p.s.nextSeq++;
        return seq;
      };
    };
    expect(firstFailure(variant(dropsEveryFourth))).toMatch(/queue check lost/);
  });

  it('a topic that keeps maxDeliveries + 1 but answers the bound asked for: deliveries', () => {
    const offByOne: Patch = (p) => {
      const putConfig = p.putConfig.bind(p);
      p.putConfig = (cmd: QueueCommand & { type: 'putConfig' }): QueueResult => {
        if (cmd.maxDeliveries === undefined) return putConfig(cmd);
        const r: QueueResult = putConfig({ ...cmd, maxDeliveries: cmd.maxDeliveries + 1 });
        return r.type === 'config' ? { ...r, maxDeliveries: cmd.maxDeliveries } : r;
      };
    };
    // With the model on, a later PUT that leaves maxDeliveries out answers the stored bound,
    // which the model sees first on some schedules.
    expect(firstFailure(variant(offByOne))).toMatch(
      /queue check (lost: [ab]\.dlq|deliveries|model: answered \{"result":\{"type":"config")/);
    expect(firstFailure(variant(offByOne), true)).toMatch(/queue check deliveries/);
  });

  it('a receive that answers its messages newest first: fifo', () => {
    const reversed: Patch = (p) => {
      const receive = p.receive.bind(p);
      p.receive = (cmd: QueueCommand): QueueResult => {
        const r: QueueResult = receive(cmd);
        return r.type === 'received' ? { ...r, messages: [...r.messages].reverse() } : r;
      };
    };
    // Reversing messages of different keys breaks no FIFO rule, only the model's order.
    expect(firstFailure(variant(reversed))).toMatch(/queue check (fifo|model)/);
    expect(firstFailure(variant(reversed), true)).toMatch(/queue check fifo/);
  });

  it('a dead-letter that copies to the DLQ and keeps the message for redelivery: double', () => {
    const keepsIt: Patch = (p) => {
      const deadLetter = p.deadLetter.bind(p);
      p.deadLetter = (t: any, g: any, d: any): void => {
        if (t.name.endsWith('.dlq')) {
          deadLetter(t, g, d);
          return;
        }
        const e = d.entry;
        const name = `${t.name}.dlq`;
        const dlq = p.s.topics.get(name) ?? p.createTopic(name);
        p.appendEntry(dlq, { seq: e.seq, key: e.key, body: e.body, publishedAt: e.publishedAt,
          atMs: p.s.nowMs, only: null, origin: g.name, bytes: e.bytes });
        d.deliveries = 1;
        g.setKind(d, 'ready', 0);
      };
    };
    expect(firstFailure(variant(keepsIt))).toMatch(/queue check double/);
    expect(firstFailure(variant(keepsIt), true)).toMatch(/queue check double/);
  });

  it('a snapshot that carries per-replica counters: replicas diverge', () => {
    const withCounters: PartitionFactory = {
      create: (opts) => {
        const p = new QueuePartition(opts) as any;
        const snapshot = p.snapshot.bind(p);
        p.snapshot = (): Uint8Array => encode([...decode<unknown[]>(snapshot()),
          p.metrics().topics.map((t: any) => t.counters.published)]);
        return p;
      },
      restore: (image, opts) => {
        const p = QueuePartition.restore(encode(decode<unknown[]>(image).slice(0, 6)), opts) as any;
        const snapshot = p.snapshot.bind(p);
        p.snapshot = (): Uint8Array => encode([...decode<unknown[]>(snapshot()),
          p.metrics().topics.map((t: any) => t.counters.published)]);
        return p;
      },
    };
    expect(firstFailure(withCounters)).toMatch(/re-encodes differently|state machine safety/);
  });
});
