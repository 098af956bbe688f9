// Snapshot files: `snap-<index padded>.bin`, written atomically (temp file, fsync, rename,
// fsync of the directory) so that a crash leaves either the old set of snapshots or the new
// one, plus at worst a `.tmp` file that recovery removes.
//
// Layout: [magic "DSNP"][u8 version][3 zero bytes][u32 LE CRC32C of everything after it]
//         [u64 index][u64 term][u32 configBytes][config JSON][data]
import type { ClusterConfig, Snapshot } from '../raft/types.js';
import { assert } from '../assert.js';
import { crc32c } from './crc32c.js';

const MAGIC = Buffer.from('DSNP', 'latin1');
const VERSION = 1;
const HEADER_BYTES = 12;
const META_FIXED_BYTES = 8 + 8 + 4;
const INDEX_DIGITS = 16;

export const SNAPSHOT_TEMP_SUFFIX = '.tmp';

export function snapshotFileName(index: number): string {
  assert(Number.isSafeInteger(index) && index > 0, 'a snapshot index is positive');
  return `snap-${String(index).padStart(INDEX_DIGITS, '0')}.bin`;
}

/** The index in a snapshot file name, or null when `name` is not one. */
export function parseSnapshotFileName(name: string): number | null {
  const m = /^snap-(\d{1,20})\.bin$/.exec(name);
  if (m === null) return null;
  const index = Number(m[1]);
  return Number.isSafeInteger(index) && index > 0 ? index : null;
}

function writeU64(buf: Buffer, value: number, offset: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, () => `u64 field out of range: ${value}`);
  buf.writeUInt32LE(value % 0x1_0000_0000, offset);
  buf.writeUInt32LE(Math.floor(value / 0x1_0000_0000), offset + 4);
}

function readU64(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset) + buf.readUInt32LE(offset + 4) * 0x1_0000_0000;
}

export function encodeSnapshot(snap: Snapshot): Buffer {
  const config = Buffer.from(JSON.stringify({
    voters: snap.meta.config.voters, learners: snap.meta.config.learners,
  }), 'utf8');
  const buf = Buffer.alloc(HEADER_BYTES + META_FIXED_BYTES + config.byteLength +
    snap.data.byteLength);
  MAGIC.copy(buf, 0);
  buf.writeUInt8(VERSION, 4);
  let o = HEADER_BYTES;
  writeU64(buf, snap.meta.index, o);
  writeU64(buf, snap.meta.term, o + 8);
  buf.writeUInt32LE(config.byteLength, o + 16);
  o += META_FIXED_BYTES;
  config.copy(buf, o);
  buf.set(snap.data, o + config.byteLength);
  buf.writeUInt32LE(crc32c(buf.subarray(HEADER_BYTES)), 8);
  return buf;
}

export type SnapshotDecode =
  | { readonly ok: true; readonly snapshot: Snapshot }
  | { readonly ok: false; readonly reason: string };

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** Decodes and verifies a snapshot file's bytes; never throws on bad content. */
export function decodeSnapshot(buf: Buffer): SnapshotDecode {
  if (buf.byteLength < HEADER_BYTES + META_FIXED_BYTES) {
    return { ok: false, reason: `file too short (${buf.byteLength} bytes)` };
  }
  if (!buf.subarray(0, 4).equals(MAGIC)) return { ok: false, reason: 'bad magic' };
  if (buf.readUInt8(4) !== VERSION) return { ok: false, reason: `unknown version ${buf[4]}` };
  const stored = buf.readUInt32LE(8);
  const actual = crc32c(buf.subarray(HEADER_BYTES));
  if (stored !== actual) return { ok: false, reason: 'CRC32C mismatch' };
  const index = readU64(buf, HEADER_BYTES);
  const term = readU64(buf, HEADER_BYTES + 8);
  const configBytes = buf.readUInt32LE(HEADER_BYTES + 16);
  const configStart = HEADER_BYTES + META_FIXED_BYTES;
  if (configStart + configBytes > buf.byteLength) return { ok: false, reason: 'config overruns' };
  let config: ClusterConfig;
  try {
    const parsed = JSON.parse(buf.toString('utf8', configStart, configStart + configBytes)) as
      { voters?: unknown; learners?: unknown };
    if (!isStringArray(parsed.voters) || !isStringArray(parsed.learners)) {
      return { ok: false, reason: 'config is not {voters, learners}' };
    }
    config = { voters: parsed.voters, learners: parsed.learners };
  } catch (err) {
    return { ok: false, reason: `config is not JSON: ${String(err)}` };
  }
  if (!Number.isSafeInteger(index) || index <= 0 || !Number.isSafeInteger(term)) {
    return { ok: false, reason: `bad index/term ${index}/${term}` };
  }
  const data = new Uint8Array(buf.subarray(configStart + configBytes));
  return { ok: true, snapshot: { meta: { index, term, config }, data } };
}
