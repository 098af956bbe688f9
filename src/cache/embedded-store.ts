// The backing store used when no Redis is configured: each pod keeps the keys it is home for
// (only a home ever loads or writes a key) in memory, made durable by an append-only log in
// `dataDir/cache-store/store.log`.
//
// Log format: records of [u32 payload length][u32 CRC32C of payload][payload], little endian;
// the payload is JSON `[key, value | null, version]` (null: a tombstone). Writes are group
// committed: whatever queued while the previous fsync ran goes out in one write + one fsync,
// and a write resolves only after its fsync, so a putAck (write-through) is never sent for
// data a power loss could take back. On open the log is replayed; the first record that is
// short, fails its CRC or does not parse ends the log (a torn tail of a crash) and the file is
// truncated there. When the log grows past `compactBytesMin` and four times the live data,
// the live records are written to a temp file, fsynced, renamed over the log and the
// directory fsynced (a crash at any point leaves either the old or the new log whole).
import { mkdirSync, readFileSync, existsSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Histogram } from 'prom-client';
import type { Logger } from 'pino';
import { assert } from '../assert.js';
import { UnavailableError } from '../errors.js';
import { crc32c } from '../storage/crc32c.js';
import { FsSync, writeFully } from '../storage/fs-sync.js';
import type { CacheValue } from './coherence-messages.js';
import { timed, type BackingStore, type StoredValue } from './store.js';

const HEADER_BYTES = 8;
/** A record larger than this is corruption, not data (values are bounded far below it). */
export const EMBEDDED_RECORD_BYTES_MAX = 64 * 1024 * 1024;
/** Compaction is not worth it below this log size. */
export const DEFAULT_COMPACT_BYTES_MIN = 16 * 1024 * 1024;
/** Writes queued for the next group commit, at most; more wait for the one after. */
export const EMBEDDED_BATCH_RECORDS_MAX = 4096;

export interface EmbeddedStoreOptions {
  readonly dir: string;
  /** fsync each group commit (false only with --unsafe-no-fsync). */
  readonly fsync: boolean;
  readonly latency: Histogram<'store' | 'op'>;
  readonly logger: Logger;
  readonly compactBytesMin?: number;
}

interface Pending {
  readonly key: string;
  readonly rec: StoredValue;
  readonly bytes: Buffer;
  resolve(wrote: boolean): void;
  reject(err: unknown): void;
}

export function encodeRecord(key: string, rec: StoredValue): Buffer {
  const payload = Buffer.from(JSON.stringify([key, rec.value, rec.version]), 'utf8');
  assert(payload.length <= EMBEDDED_RECORD_BYTES_MAX, 'embedded store record within bounds');
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.writeUInt32LE(crc32c(payload), 4);
  payload.copy(out, HEADER_BYTES);
  return out;
}

/** Replays a log image: the records in order and where the valid prefix ends. */
export function decodeLog(buf: Buffer): { records: [string, StoredValue][]; validBytes: number } {
  const records: [string, StoredValue][] = [];
  let at = 0;
  while (at + HEADER_BYTES <= buf.length) {
    const len = buf.readUInt32LE(at);
    const crc = buf.readUInt32LE(at + 4);
    if (len > EMBEDDED_RECORD_BYTES_MAX || at + HEADER_BYTES + len > buf.length) break;
    const payload = buf.subarray(at + HEADER_BYTES, at + HEADER_BYTES + len);
    if (crc32c(payload) !== crc) break;
    const rec = parsePayload(payload);
    if (rec === null) break;
    records.push(rec);
    at += HEADER_BYTES + len;
  }
  return { records, validBytes: at };
}

function parsePayload(payload: Buffer): [string, StoredValue] | null {
  try {
    const v = JSON.parse(payload.toString('utf8')) as unknown;
    if (!Array.isArray(v) || v.length !== 3) return null;
    const [key, value, version] = v as unknown[];
    if (typeof key !== 'string' || (value !== null && typeof value !== 'string')) return null;
    if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) return null;
    return [key, { value, version }];
  } catch {
    return null;
  }
}

export class EmbeddedStore implements BackingStore {
  readonly shared = false;
  private readonly data = new Map<string, StoredValue>();
  /** Highest version accepted per key, durable or queued: "newer" is judged against it. */
  private readonly accepted = new Map<string, number>();
  private queue: Pending[] = [];
  private fh: FileHandle | null = null;
  private logBytes = 0;
  private liveBytes = 0;
  private writing: Promise<void> | null = null;
  private failed: Error | null = null;
  private readonly sync: FsSync;
  private readonly path: string;
  private readonly compactBytesMin: number;

  private constructor(private readonly o: EmbeddedStoreOptions) {
    this.sync = new FsSync(o.fsync);
    this.path = join(o.dir, 'store.log');
    this.compactBytesMin = o.compactBytesMin ?? DEFAULT_COMPACT_BYTES_MIN;
  }

  static async open(o: EmbeddedStoreOptions): Promise<EmbeddedStore> {
    const s = new EmbeddedStore(o);
    await s.recover();
    return s;
  }

  private async recover(): Promise<void> {
    mkdirSync(this.o.dir, { recursive: true });
    const image = existsSync(this.path) ? readFileSync(this.path) : Buffer.alloc(0);
    const { records, validBytes } = decodeLog(image);
    for (const [key, rec] of records) this.apply(key, rec);
    this.fh = await open(this.path, existsSync(this.path) ? 'r+' : 'w+');
    if (validBytes < image.length) {
      this.o.logger.warn({ path: this.path, validBytes, fileBytes: image.length },
        'embedded store: cutting a torn tail off the log');
      await this.fh.truncate(validBytes);
      await this.sync.file(this.fh);
    }
    await this.sync.dir(this.o.dir);
    this.logBytes = validBytes;
    this.o.logger.info({ keys: this.data.size, logBytes: validBytes }, 'embedded store opened');
  }

  private apply(key: string, rec: StoredValue): void {
    const old = this.data.get(key);
    if (old !== undefined && old.version >= rec.version) return;
    if (old !== undefined) this.liveBytes -= encodedSize(key, old);
    this.data.set(key, rec);
    this.liveBytes += encodedSize(key, rec);
    if ((this.accepted.get(key) ?? -1) < rec.version) this.accepted.set(key, rec.version);
  }

  async load(key: string): Promise<StoredValue | null> {
    return timed(this.o.latency, 'embedded', 'load', async () => this.data.get(key) ?? null);
  }

  async write(key: string, value: CacheValue, version: number): Promise<boolean> {
    assert(Number.isSafeInteger(version) && version >= 0, 'store versions are integers >= 0');
    return timed(this.o.latency, 'embedded', 'write', () => {
      if (this.failed !== null) return Promise.reject(this.failed);
      if ((this.accepted.get(key) ?? -1) >= version) return Promise.resolve(false);
      this.accepted.set(key, version);
      const rec = { value, version };
      return new Promise<boolean>((resolve, reject) => {
        this.queue.push({ key, rec, bytes: encodeRecord(key, rec), resolve, reject });
        this.kick();
      });
    });
  }

  async delete(key: string): Promise<void> {
    // A tombstone at the next version: the log only ever grows by newer records.
    const version = (this.accepted.get(key) ?? 0) + 1;
    await this.write(key, null, version);
  }

  healthy(): boolean {
    return this.failed === null && this.fh !== null;
  }

  async ping(): Promise<void> {
    if (this.failed !== null) throw this.failed;
    if (this.fh === null) throw new UnavailableError('the embedded store is closed');
  }

  async close(): Promise<void> {
    while (this.writing !== null) await this.writing;
    await this.fh?.close();
    this.fh = null;
  }

  /** Starts a group commit unless one runs; it loops while writes keep arriving. */
  private kick(): void {
    if (this.writing !== null) return;
    this.writing = this.commitLoop().finally(() => { this.writing = null; });
  }

  private async commitLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, EMBEDDED_BATCH_RECORDS_MAX);
      try {
        await this.commit(batch);
      } catch (err) {
        // A disk that failed a write or an fsync cannot be trusted with later ones: the
        // store goes unhealthy and the shell keeps retrying (the node reports not ready).
        this.failed = err instanceof Error ? err : new Error(String(err));
        this.o.logger.error({ err }, 'embedded store write failed');
        for (const p of [...batch, ...this.queue]) p.reject(err);
        this.queue = [];
        return;
      }
    }
  }

  private async commit(batch: Pending[]): Promise<void> {
    const fh = this.fh;
    assert(fh !== null, 'embedded store is open');
    const buf = Buffer.concat(batch.map((p) => p.bytes));
    await writeFully(fh, buf, this.logBytes);
    await this.sync.data(fh);
    this.logBytes += buf.length;
    for (const p of batch) this.apply(p.key, p.rec);
    for (const p of batch) p.resolve(true);
    if (this.logBytes > this.compactBytesMin && this.logBytes > 4 * this.liveBytes) {
      await this.compact();
    }
  }

  private async compact(): Promise<void> {
    const tmp = `${this.path}.tmp`;
    const out = await open(tmp, 'w');
    let bytes = 0;
    try {
      for (const [key, rec] of this.data) {
        const b = encodeRecord(key, rec);
        await writeFully(out, b, bytes);
        bytes += b.length;
      }
      await this.sync.file(out);
    } finally {
      await out.close();
    }
    await rename(tmp, this.path);
    await this.sync.dir(this.o.dir);
    await this.fh?.close();
    this.fh = await open(this.path, 'r+');
    this.o.logger.info({ fromBytes: this.logBytes, toBytes: bytes }, 'embedded store compacted');
    this.logBytes = bytes;
  }
}

/** About what a record takes in the log (UTF-16 length for bytes, escapes ignored): only
 * the compaction trigger uses it, so cheap beats exact. */
function encodedSize(key: string, rec: StoredValue): number {
  return HEADER_BYTES + key.length + (rec.value?.length ?? 4) + 24;
}
