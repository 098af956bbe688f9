// What the queue benchmark's three sides share: the settings (so that the ratio column pairs
// the right rows), the 100-byte payload, and the two ways a row is measured: a closed loop of
// publishes (runLoad) and a timed drain of a prefilled queue by concurrent consumers.
import { assert } from '../../src/assert.js';
import { runLoad } from './load.js';
import { LatencyRecorder, makeRow } from './stats.js';
import type { Row } from './stats.js';

/** Bytes of every message body (the figure). */
export const PAYLOAD_BYTES = 100;
/** Requests in flight of the unbatched publish rows. */
export const DEFAULT_PUBLISH_IN_FLIGHT = [1, 64] as const;
/** Messages per request of dsync's batched row, and the requests it keeps in flight. */
export const DEFAULT_BATCH_MESSAGES = 100;
export const DEFAULT_BATCH_IN_FLIGHT = 16;
/** Consumers draining the prefilled queue, each taking up to CONSUME_BATCH at a time. */
export const DEFAULT_CONSUMERS = 4;
export const CONSUME_BATCH = 100;
/** Measured ms per publish row, and messages drained by the consume row. */
export const DEFAULT_QUEUE_DURATION_MS = 5000;
export const DEFAULT_CONSUME_MESSAGES = 50_000;
/** `--quick`: enough to show that every side works, not figures to quote. */
export const QUICK_DURATION_MS = 1000;
export const QUICK_CONSUME_MESSAGES = 2000;
export const QUICK_WARMUP_MS = 300;

export function publishSetting(inFlight: number): string {
  return `publish, ${inFlight} in flight`;
}

export function batchSetting(messages: number, inFlight: number): string {
  return `publish, batches of ${messages}, ${inFlight} in flight`;
}

export function consumeSetting(consumers: number): string {
  return `consume + ack, ${consumers} consumers`;
}

/** 100 bytes of text (a JSON string for dsync, raw bytes for the others). */
export function payload(): string {
  return 'x'.repeat(PAYLOAD_BYTES);
}

export interface QueueBenchOptions {
  /** Measured ms of each publish row. */
  readonly durationMs: number;
  readonly warmupMs?: number;
  /** Messages prefilled and then drained by the consume row. */
  readonly consumeMessages: number;
  readonly publishInFlight: readonly number[];
  readonly consumers: number;
}

/** One publish row: `inFlight` workers, each sending `publish()` and waiting for it. A
 * request that carries `messagesPerOp` messages counts them all in the rate. */
export async function publishRow(system: string, setting: string, inFlight: number,
  o: QueueBenchOptions, publish: () => Promise<void>, messagesPerOp = 1,
  extra?: Record<string, number | string>): Promise<Row> {
  const r = await runLoad({
    label: `${system}, ${setting}`, concurrency: inFlight, durationMs: o.durationMs,
    ...(o.warmupMs === undefined ? {} : { warmupMs: o.warmupMs }),
    op: publish,
  });
  if (r.errors > 0) {
    process.stderr.write(`queue: ${system}, ${setting}: ${r.errors} errors, e.g. ` +
      `${r.errorSamples.join(' | ')}\n`);
  }
  return makeRow(system, setting, { ...r, ops: r.ops * messagesPerOp },
    { requests: r.ops, messagesPerRequest: messagesPerOp, ...extra });
}

/** Called by a consumer once per batch it took and acked: how many, and how long the batch
 * took from asking for it to the ack. */
export type BatchDone = (messages: number, latencyNs: bigint) => void;

/**
 * One consume row: `drain` must take and ack `total` messages (already in the queue) with
 * `consumers` consumers and call `done` per batch; it resolves when all are acked. The rate
 * is messages per second over the whole drain; p50/p99 are of one batch.
 */
export async function consumeRow(system: string, setting: string, total: number,
  drain: (done: BatchDone) => Promise<void>, extra?: Record<string, number | string>):
  Promise<Row> {
  assert(Number.isSafeInteger(total) && total >= 1, `messages to drain ≥ 1, got ${total}`);
  const latency = new LatencyRecorder();
  let consumed = 0;
  const t0 = process.hrtime.bigint();
  await drain((n, ns) => {
    consumed += n;
    latency.record(ns);
  });
  const elapsedMs = Number(process.hrtime.bigint() - t0) / 1e6;
  assert(consumed >= total, `${system}: drained ${consumed} of ${total} messages`);
  return makeRow(system, setting, { ops: consumed, errors: 0, elapsedMs,
    latency: latency.summary() }, { batches: latency.count, latency: 'one batch', ...extra });
}
