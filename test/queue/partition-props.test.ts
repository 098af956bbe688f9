// Property tests of the queue partition: random command sequences (fast-check) over a few
// topics, groups and keys with small limits and a virtual clock, each command checked by
// PartitionChecker (specific rules, then the naive model) and by the partition's own
// invariants; a snapshot taken mid-run restores to a byte-identical twin that carries on.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QueuePartition } from '../../src/queue/partition.js';
import { PartitionChecker } from './partition-checks.js';
import {
  CommandDriver, DRIVER_LIMITS, type GenMessage, type GenOp, type GenStep,
} from './partition-driver.js';

const SALT = 0x5a17;
const topic = fc.constantFrom(0, 0, 0, 1, 1, 2, 3);
const group = fc.nat(2);

const genMessage: fc.Arbitrary<GenMessage> = fc.record({
  body: fc.oneof({ weight: 12, arbitrary: fc.constantFrom('json' as const, 'bytes' as const) },
    { weight: 1, arbitrary: fc.constantFrom('empty' as const, 'big' as const) }),
  key: fc.option(fc.nat(1), { nil: null, freq: 4 }),
  dedup: fc.oneof({ weight: 8, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat(5) }),
  delayMs: fc.constantFrom(0, 0, 0, 0, 300, 5000),
});

const genOp: fc.Arbitrary<GenOp> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('publish' as const), topic,
    messages: fc.array(genMessage, { minLength: 1, maxLength: 6 }) }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('receive' as const),
    topic: fc.constantFrom(0, 0, 1, 2, 2, 2, 3), group,
    max: fc.integer({ min: 1, max: 4 }),
    visibilityMs: fc.constantFrom(null, 100, 1000, 30_000) }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constantFrom('ack' as const, 'ack' as const,
    'nack' as const, 'extend' as const), picks: fc.array(fc.nat(63), { minLength: 1,
    maxLength: 3 }), wrongGroup: fc.boolean(), garbage: fc.boolean(),
  ms: fc.constantFrom(0, 0, 200, 3000) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('redrive' as const), topic,
    max: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('putConfig' as const),
    topic: fc.constantFrom(0, 1, 2, 2, 3),
    maxDeliveries: fc.option(fc.integer({ min: 1, max: 3 }), { nil: null }),
    visibilityMs: fc.option(fc.constantFrom(100, 500, 2000), { nil: null }),
    retentionMs: fc.option(fc.constantFrom(1000, 4000, 60_000), { nil: null }) }) },
  { weight: 2, arbitrary: fc.constant({ op: 'expire' as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('extendLeases' as const),
    byMs: fc.constantFrom(0, 500) }) },
);

const genStep: fc.Arbitrary<GenStep> = fc.record({
  dtMs: fc.constantFrom(0, 0, 50, 150, 600, 2500, 40_000),
  op: genOp,
});

function run(steps: readonly GenStep[], forkAt: number, tally: Record<string, number>): void {
  let p = new QueuePartition({ limits: DRIVER_LIMITS, receiptSalt: SALT });
  const checker = new PartitionChecker(DRIVER_LIMITS, SALT);
  const driver = new CommandDriver();
  let now = 1_000_000;
  steps.forEach((s, i) => {
    if (i === forkAt) {
      const image = p.snapshot();
      const twin = QueuePartition.restore(image, { limits: DRIVER_LIMITS, receiptSalt: SALT });
      expect(Buffer.from(twin.snapshot()).equals(Buffer.from(image))).toBe(true);
      p = twin;
    }
    now += s.dtMs;
    const cmd = driver.resolve(s.op);
    const out = p.apply(cmd, { nowMs: now });
    p.checkInvariants();
    checker.observe(cmd, now, out, p);
    driver.observe(cmd, out.result);
  });
  for (const [k, n] of Object.entries(checker.tally)) tally[k] = (tally[k] ?? 0) + n;
}

describe('queue partition properties', () => {
  it('every command agrees with the naive model and keeps the rules', () => {
    const tally: Record<string, number> = {};
    fc.assert(fc.property(fc.array(genStep, { minLength: 1, maxLength: 80, size: 'max' }),
      fc.nat(80), (steps, forkAt) => run(steps, forkAt, tally)), { numRuns: 150 });
    // The runs must reach the interesting parts, or the checks above prove little.
    for (const k of ['published', 'received', 'ackedSome', 'redelivered', 'deadLettered',
      'redrivenSome', 'dedup', 'exhausted:inflightPerGroup', 'exhausted:messageBytes',
      'exhausted:topicRetainedBytes', 'exhausted:partitionRetainedBytes', 'exhausted:topics',
      'exhausted:groupsPerTopic', 'exhausted:dedupEntries', 'state:fresh', 'state:inflight',
      'state:ready', 'state:delayed', 'state:parked']) {
      expect(tally[k] ?? 0, k).toBeGreaterThan(0);
    }
  });
});
