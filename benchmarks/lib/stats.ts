// Latency recording and result tables shared by every benchmark script. Benchmarks compare
// dsync with a reference system (etcd, Redis, bare Koa) in the same run, so every script
// produces the same Row shape and the same markdown table, and `--json` for machines.
import { parseArgs } from 'node:util';
import { assert } from '../../src/assert.js';
import { seededRand } from '../../src/raft/rand.js';
import type { Rand } from '../../src/raft/rand.js';
import { describeMachine, machineLine } from './machine.js';

/** Samples kept before the recorder switches to reservoir sampling (8 bytes each: 16 MiB). */
export const DEFAULT_SAMPLES_MAX = 2_000_000;
/** Samples must fit the largest array V8 allocates comfortably. */
const SAMPLES_MAX_LIMIT = 50_000_000;
const NS_PER_MS = 1e6;

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/**
 * Records latencies in nanoseconds (from `process.hrtime.bigint()` differences). Memory is
 * bounded by `samplesMax`: beyond it a uniform reservoir keeps percentiles unbiased, while
 * count, mean and max stay exact.
 */
export class LatencyRecorder {
  private samplesNs: Float64Array;
  private kept = 0;
  private seen = 0;
  private sumNs = 0;
  private maxNs = 0;
  private readonly rand: Rand;

  constructor(readonly samplesMax = DEFAULT_SAMPLES_MAX, seed = 1) {
    assert(Number.isSafeInteger(samplesMax) && samplesMax >= 1 && samplesMax <= SAMPLES_MAX_LIMIT,
      `samplesMax must be an integer in [1, ${SAMPLES_MAX_LIMIT}], got ${samplesMax}`);
    // Start small and double: most runs record far fewer samples than the bound.
    this.samplesNs = new Float64Array(Math.min(samplesMax, 4096));
    this.rand = seededRand(seed);
  }

  get count(): number {
    return this.seen;
  }

  record(latencyNs: number | bigint): void {
    const ns = Number(latencyNs);
    assert(Number.isFinite(ns) && ns >= 0, `latency must be a finite non-negative ns, got ${ns}`);
    this.seen++;
    this.sumNs += ns;
    if (ns > this.maxNs) this.maxNs = ns;
    if (this.kept < this.samplesMax) {
      if (this.kept === this.samplesNs.length) this.grow();
      this.samplesNs[this.kept++] = ns;
      return;
    }
    // Reservoir sampling (Algorithm R): every sample seen so far is kept with equal odds.
    const slot = this.rand.int(0, this.seen);
    if (slot < this.samplesMax) this.samplesNs[slot] = ns;
  }

  /** Adds another recorder's samples (workers may keep their own). */
  merge(other: LatencyRecorder): void {
    const otherSamples = other.samplesNs.subarray(0, other.kept);
    for (const ns of otherSamples) this.record(ns);
    // Samples dropped by the other reservoir still count toward count, mean and max.
    this.seen += other.seen - other.kept;
    this.sumNs += other.sumNs - sum(otherSamples);
    if (other.maxNs > this.maxNs) this.maxNs = other.maxNs;
  }

  summary(): LatencySummary {
    const sorted = this.samplesNs.slice(0, this.kept).sort();
    return {
      count: this.seen,
      meanMs: this.seen === 0 ? 0 : this.sumNs / this.seen / NS_PER_MS,
      p50Ms: percentileOfSorted(sorted, 0.5) / NS_PER_MS,
      p99Ms: percentileOfSorted(sorted, 0.99) / NS_PER_MS,
      maxMs: this.maxNs / NS_PER_MS,
    };
  }

  private grow(): void {
    const next = new Float64Array(Math.min(this.samplesMax, this.samplesNs.length * 2));
    next.set(this.samplesNs);
    this.samplesNs = next;
  }
}

function sum(values: Float64Array): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}

/** Nearest-rank percentile (the value below which a fraction `q` of samples fall). */
export function percentileOfSorted(sorted: ArrayLike<number>, q: number): number {
  assert(q >= 0 && q <= 1, `percentile must be in [0, 1], got ${q}`);
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  const value = sorted[rank - 1];
  assert(value !== undefined, 'rank within bounds');
  return value;
}

/** One line of a result table: one system under one setting. */
export interface Row {
  /** `dsync`, `etcd 3.4`, `redis 7`, `koa` … */
  system: string;
  /** What varied: `64 in flight`, `16 workers, one key` … Rows with equal settings compare. */
  setting: string;
  ops: number;
  errors: number;
  elapsedMs: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** 1-minute load average at the start and end of the measured phase (null when unknown). */
  loadAvg: { start: number; end: number } | null;
  /** Anything else worth keeping in the JSON output (attempts per acquire, hit rate…). */
  extra?: Record<string, number | string>;
}

export function makeRow(
  system: string, setting: string,
  result: { ops: number; errors: number; elapsedMs: number; latency: LatencySummary;
    loadAvg?: { start: number; end: number } },
  extra?: Record<string, number | string>,
): Row {
  const row: Row = {
    system, setting, ops: result.ops, errors: result.errors, elapsedMs: result.elapsedMs,
    opsPerSec: result.elapsedMs > 0 ? (result.ops * 1000) / result.elapsedMs : 0,
    p50Ms: result.latency.p50Ms, p99Ms: result.latency.p99Ms, maxMs: result.latency.maxMs,
    loadAvg: result.loadAvg ?? null,
  };
  if (extra !== undefined) row.extra = extra;
  return row;
}

/**
 * Throughput of each row divided by that of the reference system's row with the same
 * setting (so dsync at 0.5 does half of etcd's puts/s). Null where there is no reference.
 */
export function ratiosTo(rows: readonly Row[], referenceSystem: string): (number | null)[] {
  return rows.map((row) => {
    const ref = rows.find((r) => r.system === referenceSystem && r.setting === row.setting);
    if (ref === undefined || ref.opsPerSec === 0) return null;
    return row.opsPerSec / ref.opsPerSec;
  });
}

function formatMs(ms: number): string {
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

function formatOps(opsPerSec: number): string {
  return opsPerSec >= 100 ? Math.round(opsPerSec).toLocaleString('en-US') : opsPerSec.toFixed(1);
}

function formatLoad(load: Row['loadAvg']): string {
  return load === null ? '—' : `${load.start.toFixed(1)}–${load.end.toFixed(1)}`;
}

/** system | setting | ops/s | p50 | p99 | ratio | load, ratio against `referenceSystem`;
 * load is the 1-minute load average at the start and end of the row's measured phase. */
export function markdownTable(rows: readonly Row[], referenceSystem: string): string {
  const ratios = ratiosTo(rows, referenceSystem);
  const lines = [
    '| system | setting | ops/s | p50 | p99 | ratio | load |',
    '|---|---|---:|---:|---:|---:|---:|',
  ];
  rows.forEach((row, i) => {
    const ratio = ratios[i];
    const errors = row.errors > 0 ? ` (${row.errors} errors)` : '';
    lines.push(`| ${row.system} | ${row.setting}${errors} | ${formatOps(row.opsPerSec)} | ` +
      `${formatMs(row.p50Ms)} | ${formatMs(row.p99Ms)} | ` +
      `${ratio === null || ratio === undefined ? '—' : ratio.toFixed(2)} | ` +
      `${formatLoad(row.loadAvg)} |`);
  });
  return lines.join('\n');
}

export interface BenchArgs {
  json: boolean;
  /** Overrides each measured phase's duration (for quick runs while developing). */
  durationMs: number | undefined;
  /** `--only 'a;b'`: run only the settings whose name contains one of these, or is exactly
   * one written `=name` (a profile of one row, say); null = every setting. */
  only: readonly string[] | null;
  /** `--no-reference`: skip the reference system (etcd, Redis, Koa) for a quick look. */
  noReference: boolean;
}

/** True when `setting` is selected by `--only` (always without it): it contains one of its
 * entries, or equals one written `=setting`. */
export function selected(args: Pick<BenchArgs, 'only'>, setting: string): boolean {
  return args.only === null || args.only.some((s) =>
    (s.startsWith('=') ? setting === s.slice(1) : setting.includes(s)));
}

/** `--json`, `--duration-ms N`, `--only 'a;b'` and `--no-reference`, the flags every benchmark
 * script accepts. */
export function parseBenchArgs(argv: readonly string[] = process.argv.slice(2)): BenchArgs {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      json: { type: 'boolean', default: false }, 'duration-ms': { type: 'string' },
      only: { type: 'string' }, 'no-reference': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const raw = values['duration-ms'];
  let durationMs: number | undefined;
  if (raw !== undefined) {
    durationMs = Number(raw);
    if (!Number.isSafeInteger(durationMs) || durationMs < 100) {
      throw new Error(`--duration-ms must be an integer ≥ 100, got ${raw}`);
    }
  }
  const only = values.only === undefined ? null
    : values.only.split(';').map((x) => x.trim()).filter((x) => x !== '');
  return { json: values.json ?? false, durationMs, only,
    noReference: values['no-reference'] ?? false };
}

/** `--json` and `--<flag> a,b,c`: for benchmarks whose rows are sizes (crowds, log lengths).
 * Every size must be an integer in [min, max]; `defaults` when the flag is absent. */
export function parseSizesArgs(argv: readonly string[], flag: string,
  defaults: readonly number[], min: number, max: number): { json: boolean; sizes: number[] } {
  const { values } = parseArgs({
    args: [...argv],
    options: { json: { type: 'boolean', default: false }, [flag]: { type: 'string' } },
    strict: true,
  });
  const raw = values[flag];
  const sizes = typeof raw === 'string' ? raw.split(',').map(Number) : [...defaults];
  for (const n of sizes) {
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new Error(`--${flag} takes integers from ${min} to ${max}, got ${n}`);
    }
  }
  return { json: values.json === true, sizes };
}

/** Prints the rows as a markdown table, or as one JSON document with `--json`, with the
 * machine they were measured on. */
export function printRows(
  title: string, rows: readonly Row[], referenceSystem: string, args: Pick<BenchArgs, 'json'>,
): void {
  const machine = describeMachine();
  if (args.json) {
    const ratios = ratiosTo(rows, referenceSystem);
    const out = rows.map((row, i) => ({ ...row, ratio: ratios[i] ?? null }));
    const doc = { title, referenceSystem, machine, rows: out };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
    return;
  }
  process.stdout.write(`\n## ${title}\n\n${markdownTable(rows, referenceSystem)}\n\n` +
    `Measured on ${machineLine(machine)}.\n`);
}
