// The closed-loop load generator: exact operation counts, warm-up left out, reported
// latencies used as given, and a run that aborts when too many operations fail.
import { describe, expect, it } from 'vitest';
import { runLoad } from '../../benchmarks/lib/load.js';

describe('runLoad', () => {
  it('issues exactly `ops` measured operations across the workers', async () => {
    const seen = new Set<number>();
    const workers = new Set<number>();
    const result = await runLoad({
      concurrency: 4, ops: 500, warmupMs: 0, progressMs: 0,
      op: async (worker, i) => {
        workers.add(worker);
        seen.add(i);
      },
    });
    expect(result.ops).toBe(500);
    expect(result.errors).toBe(0);
    expect(seen.size).toBe(500);
    expect([...workers].sort()).toEqual([0, 1, 2, 3]);
    expect(result.latency.count).toBe(500);
  });

  it('records the latency an operation reports instead of its duration', async () => {
    const result = await runLoad({
      concurrency: 2, ops: 50, warmupMs: 0, progressMs: 0,
      op: async (_w, i) => (i % 2 === 0 ? 3_000_000 : 5_000_000),
    });
    expect(result.latency.p50Ms).toBe(3);
    expect(result.latency.p99Ms).toBe(5);
    expect(result.latency.maxMs).toBe(5);
  });

  it('leaves warm-up operations out of the measured count', async () => {
    let issued = 0;
    const result = await runLoad({
      concurrency: 2, ops: 20, warmupMs: 50, progressMs: 0,
      op: () => new Promise<void>((resolve) => {
        issued++;
        setTimeout(resolve, 1);
      }),
    });
    expect(result.ops).toBe(20);
    expect(issued).toBeGreaterThan(20);
  });

  it('stops a timed run and reports exactly the measured window', async () => {
    const result = await runLoad({
      concurrency: 3, durationMs: 200, warmupMs: 0, progressMs: 0,
      op: () => new Promise<void>((resolve) => setImmediate(resolve)),
    });
    expect(result.elapsedMs).toBe(200);
    expect(result.ops).toBeGreaterThan(0);
    expect(result.opsPerSec).toBeCloseTo(result.ops * 5, 6);
  });

  it('counts failures apart and rejects once more than errorsMax fail', async () => {
    const mixed = await runLoad({
      concurrency: 1, ops: 10, warmupMs: 0, progressMs: 0, errorsMax: 10,
      op: async (_w, i) => {
        if (i % 2 === 1) throw new Error('odd');
      },
    });
    expect(mixed.ops).toBe(5);
    expect(mixed.errors).toBe(5);
    expect(mixed.errorSamples).toEqual(['Error: odd']);
    await expect(runLoad({
      concurrency: 2, durationMs: 60_000, warmupMs: 0, progressMs: 0, errorsMax: 3,
      op: async () => {
        throw new Error('boom');
      },
    })).rejects.toThrow(/more than 3 operations failed.*boom/);
  });

  it('validates its bounds', async () => {
    const op = async (): Promise<void> => undefined;
    await expect(runLoad({ concurrency: 0, ops: 1, op })).rejects.toThrow(/concurrency/);
    await expect(runLoad({ concurrency: 1, op })).rejects.toThrow(/exactly one/);
    await expect(runLoad({ concurrency: 1, ops: 1, durationMs: 1, op }))
      .rejects.toThrow(/exactly one/);
  });
});
