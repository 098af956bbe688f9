// The on-disk record of the write-ahead log, and the scan of one segment file. Pure: buffers
// in, records out; the IO lives in raft-storage.ts.
//
// A record is  [u32 LE bodyLength][u32 LE CRC32C][body]  where body = [kind u8][payload].
// The CRC covers the length field as well as the body, so a flipped bit in the length is
// caught like any other instead of sending the reader to a wrong offset with a "valid" CRC.
// Integers are u64 little-endian (safe integers only); strings are UTF-8.
//
// Tagged records (the pod WAL, where the groups of one process share one log) set the high
// bit of the kind byte and carry the group as a u32 LE after the payload:
// body = [kind | 0x80][payload][u32 group]. Commit records are never tagged: a write (a
// group commit) may carry records of many groups, and its commit record closes all of them.
import type { Entry, EntryType, HardState } from '../raft/types.js';
import { assert } from '../assert.js';
import { crc32c } from './crc32c.js';

export const RECORD_HEADER_BYTES = 8;

/** Record kinds as stored in the first body byte. Never renumber: they are on disk. */
const KIND_ENTRY = 1;
const KIND_HARD_STATE = 2;
const KIND_TRUNCATE = 3;
const KIND_RESET = 4;
const KIND_COMMIT = 5;
const KIND_DROP = 6;
const KIND_LAST = KIND_DROP;
/** Set in the kind byte of a tagged record. */
const TAGGED = 0x80;
const TAG_BYTES = 4;
/** Group ids a tagged record can carry. */
export const GROUP_ID_MAX = 0xffff_ffff;

const ENTRY_TYPES: readonly EntryType[] = ['normal', 'config', 'noop'];
const ENTRY_FIXED_BYTES = 1 + 8 + 8 + 1;
const HARD_STATE_FIXED_BYTES = 1 + 8 + 8 + 1;

export type WalRecord =
  | { readonly kind: 'entry'; readonly entry: Entry }
  | { readonly kind: 'hardState'; readonly hardState: HardState }
  /** Entries with index >= `index` are gone: the start of an overwrite. */
  | { readonly kind: 'truncate'; readonly index: number }
  /** The log was replaced by the snapshot at (index, term): every earlier entry is gone. */
  | { readonly kind: 'reset'; readonly index: number; readonly term: number }
  /** Ends one write (a group commit): the `unitBytes` bytes before this record were written
   * and fsynced together with it. Recovery uses it to tell the unfinished last write, which
   * may be torn anywhere inside, from damage to a write that was complete. */
  | { readonly kind: 'commit'; readonly unitBytes: number }
  /** The group's log is gone (its replica was removed from this pod): what it wrote before is
   * garbage, and a later record of the same group starts a new log. Tagged only. */
  | { readonly kind: 'drop' };

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function writeU64(buf: Buffer, value: number, offset: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, () => `u64 field out of range: ${value}`);
  buf.writeUInt32LE(value % 0x1_0000_0000, offset);
  buf.writeUInt32LE(Math.floor(value / 0x1_0000_0000), offset + 4);
}

function readU64(buf: Buffer, offset: number): number {
  const value = buf.readUInt32LE(offset) + buf.readUInt32LE(offset + 4) * 0x1_0000_0000;
  if (!Number.isSafeInteger(value)) throw new RecordFormatError(`u64 at ${offset} unsafe`);
  return value;
}

/** Size of the body of `rec` (kind byte included), without encoding it. */
export function recordBodyBytes(rec: WalRecord): number {
  switch (rec.kind) {
    case 'entry': return ENTRY_FIXED_BYTES + rec.entry.data.byteLength;
    case 'hardState':
      return HARD_STATE_FIXED_BYTES + (rec.hardState.vote === null
        ? 0 : utf8.encode(rec.hardState.vote).byteLength);
    case 'truncate': return 1 + 8;
    case 'reset': return 1 + 8 + 8;
    case 'commit': return 1 + 8;
    case 'drop': return 1;
  }
}

/** Size of the body of `rec` when tagged with a group. */
export function taggedRecordBodyBytes(rec: WalRecord): number {
  return recordBodyBytes(rec) + TAG_BYTES;
}

/** Encodes one framed record (header + body), untagged (a one-group WAL). */
export function encodeRecord(rec: WalRecord): Buffer {
  assert(rec.kind !== 'drop', 'a drop record is always tagged');
  return encodeFramed(rec, null);
}

/** Encodes one framed record of `group` (the pod WAL). */
export function encodeTaggedRecord(rec: WalRecord, group: number): Buffer {
  assert(rec.kind !== 'commit', 'commit records are never tagged');
  assert(Number.isSafeInteger(group) && group >= 0 && group <= GROUP_ID_MAX,
    () => `group id ${group} out of range`);
  return encodeFramed(rec, group);
}

function encodeFramed(rec: WalRecord, group: number | null): Buffer {
  const untaggedBytes = recordBodyBytes(rec);
  const bodyBytes = untaggedBytes + (group === null ? 0 : TAG_BYTES);
  const buf = Buffer.alloc(RECORD_HEADER_BYTES + bodyBytes);
  const b = RECORD_HEADER_BYTES;
  switch (rec.kind) {
    case 'entry': {
      const typeCode = ENTRY_TYPES.indexOf(rec.entry.type);
      assert(typeCode >= 0, () => `unknown entry type ${rec.entry.type}`);
      buf.writeUInt8(KIND_ENTRY, b);
      writeU64(buf, rec.entry.term, b + 1);
      writeU64(buf, rec.entry.index, b + 9);
      buf.writeUInt8(typeCode, b + 17);
      buf.set(rec.entry.data, b + ENTRY_FIXED_BYTES);
      break;
    }
    case 'hardState': {
      const hs = rec.hardState;
      buf.writeUInt8(KIND_HARD_STATE, b);
      writeU64(buf, hs.term, b + 1);
      writeU64(buf, hs.commit, b + 9);
      buf.writeUInt8(hs.vote === null ? 0 : 1, b + 17);
      if (hs.vote !== null) buf.set(utf8.encode(hs.vote), b + HARD_STATE_FIXED_BYTES);
      break;
    }
    case 'truncate':
      buf.writeUInt8(KIND_TRUNCATE, b);
      writeU64(buf, rec.index, b + 1);
      break;
    case 'reset':
      buf.writeUInt8(KIND_RESET, b);
      writeU64(buf, rec.index, b + 1);
      writeU64(buf, rec.term, b + 9);
      break;
    case 'commit':
      buf.writeUInt8(KIND_COMMIT, b);
      writeU64(buf, rec.unitBytes, b + 1);
      break;
    case 'drop':
      buf.writeUInt8(KIND_DROP, b);
      break;
  }
  if (group !== null) {
    buf.writeUInt8(buf.readUInt8(b) | TAGGED, b);
    buf.writeUInt32LE(group, b + untaggedBytes);
  }
  buf.writeUInt32LE(bodyBytes, 0);
  buf.writeUInt32LE(recordCrc(buf, 0, bodyBytes), 4);
  return buf;
}

function recordCrc(buf: Buffer, offset: number, bodyBytes: number): number {
  const lengthCrc = crc32c(buf.subarray(offset, offset + 4));
  const bodyStart = offset + RECORD_HEADER_BYTES;
  return crc32c(buf.subarray(bodyStart, bodyStart + bodyBytes), lengthCrc);
}

/** A body whose CRC matched but whose content makes no sense: a bug or a foreign file. */
export class RecordFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecordFormatError';
  }
}

function expectBytes(body: Buffer, bytes: number, what: string): void {
  if (body.byteLength !== bytes) {
    throw new RecordFormatError(`${what} record has ${body.byteLength} bytes, expected ${bytes}`);
  }
}

/** Decodes a body (kind byte first). Entry data is a view into `body`'s buffer, not a copy:
 * recovery reads a whole segment into one buffer, and a million small copies would cost
 * seconds of garbage collection at start-up. The segment's buffer then lives as long as the
 * entries recovered from it do, that is until the log is compacted past them. */
export function decodeBody(body: Buffer): WalRecord {
  return decodeTaggedBody(body).record;
}

/** A decoded record and its group (null: untagged). */
export interface GroupRecord {
  readonly record: WalRecord;
  readonly group: number | null;
}

/** Decodes a body that may be tagged with a group. */
export function decodeTaggedBody(full: Buffer): GroupRecord {
  if (full.byteLength === 0) throw new RecordFormatError('empty record body');
  const first = full.readUInt8(0);
  if ((first & TAGGED) === 0) {
    const record = decodeUntagged(full, first);
    if (record.kind === 'drop') throw new RecordFormatError('an untagged drop record');
    return { record, group: null };
  }
  if (full.byteLength < 1 + TAG_BYTES) throw new RecordFormatError('short tagged record');
  const end = full.byteLength - TAG_BYTES;
  const kind = first & ~TAGGED;
  if (kind === KIND_COMMIT) throw new RecordFormatError('a tagged commit record');
  return { record: decodeUntagged(full.subarray(0, end), kind), group: full.readUInt32LE(end) };
}

/** `body` with its kind byte read as `kind` (the tag flag cleared). */
function decodeUntagged(body: Buffer, kind: number): WalRecord {
  switch (kind) {
    case KIND_ENTRY: {
      if (body.byteLength < ENTRY_FIXED_BYTES) throw new RecordFormatError('short entry record');
      const type = ENTRY_TYPES[body.readUInt8(17)];
      if (type === undefined) throw new RecordFormatError(`unknown entry type ${body[17]}`);
      // A plain Uint8Array view (not a Buffer), as entries made in memory carry.
      const data = new Uint8Array(body.buffer, body.byteOffset + ENTRY_FIXED_BYTES,
        body.byteLength - ENTRY_FIXED_BYTES);
      return { kind: 'entry', entry: { term: readU64(body, 1), index: readU64(body, 9), type, data } };
    }
    case KIND_HARD_STATE: {
      if (body.byteLength < HARD_STATE_FIXED_BYTES) {
        throw new RecordFormatError('short hard state record');
      }
      const hasVote = body.readUInt8(17);
      if (hasVote > 1) throw new RecordFormatError(`bad vote flag ${hasVote}`);
      if (hasVote === 0) expectBytes(body, HARD_STATE_FIXED_BYTES, 'hard state');
      let vote: string | null = null;
      try {
        if (hasVote === 1) vote = utf8Strict.decode(body.subarray(HARD_STATE_FIXED_BYTES));
      } catch (err) {
        throw new RecordFormatError(`vote is not UTF-8: ${String(err)}`);
      }
      return { kind: 'hardState', hardState: { term: readU64(body, 1), commit: readU64(body, 9), vote } };
    }
    case KIND_TRUNCATE:
      expectBytes(body, 9, 'truncate');
      return { kind: 'truncate', index: readU64(body, 1) };
    case KIND_RESET:
      expectBytes(body, 17, 'reset');
      return { kind: 'reset', index: readU64(body, 1), term: readU64(body, 9) };
    case KIND_COMMIT:
      expectBytes(body, 9, 'commit');
      return { kind: 'commit', unitBytes: readU64(body, 1) };
    case KIND_DROP:
      expectBytes(body, 1, 'drop');
      return { kind: 'drop' };
    default:
      throw new RecordFormatError(`unknown record kind ${kind}`);
  }
}

export type RecordCheck =
  | { readonly ok: true; readonly record: WalRecord; readonly group: number | null;
    readonly next: number }
  /** `intact`: the CRC matched, so this is not a torn write but bad content. `advice`: what
   * the operator should do when it is not the usual "restore from a peer". */
  | { readonly ok: false; readonly reason: string; readonly intact: boolean;
    readonly advice?: string };

/** A length over recordBytesMax is garbage, unless the CRC over it matches: then it is a
 * real record written under a larger setting, and cutting it off as a torn tail would lose
 * acknowledged data. */
function checkOversized(buf: Buffer, offset: number, bodyBytes: number, recordBytesMax: number):
RecordCheck {
  const reason = `record length ${bodyBytes} over recordBytesMax ${recordBytesMax}`;
  const fits = buf.byteLength - offset - RECORD_HEADER_BYTES >= bodyBytes;
  if (!fits || buf.readUInt32LE(offset + 4) !== recordCrc(buf, offset, bodyBytes)) {
    return { ok: false, reason, intact: false };
  }
  return { ok: false, intact: true, reason: `${reason}, with a valid CRC`, advice: 'The record ' +
    'was written with a larger recordBytesMax: restart with recordBytesMax of at least ' +
    `${bodyBytes}. Do not delete anything.` };
}

/** Checks the record that starts at `offset` of a segment buffer. */
export function checkRecordAt(buf: Buffer, offset: number, recordBytesMax: number): RecordCheck {
  const remaining = buf.byteLength - offset;
  if (remaining < RECORD_HEADER_BYTES) {
    return { ok: false, reason: `truncated header (${remaining} of 8 bytes)`, intact: false };
  }
  const bodyBytes = buf.readUInt32LE(offset);
  if (bodyBytes === 0) return { ok: false, reason: 'record length 0', intact: false };
  if (bodyBytes > recordBytesMax) return checkOversized(buf, offset, bodyBytes, recordBytesMax);
  if (remaining - RECORD_HEADER_BYTES < bodyBytes) {
    return { ok: false, intact: false, reason: `truncated record: length says ${bodyBytes} bytes,` +
      ` ${remaining - RECORD_HEADER_BYTES} remain in the file` };
  }
  const stored = buf.readUInt32LE(offset + 4);
  const actual = recordCrc(buf, offset, bodyBytes);
  if (stored !== actual) {
    return { ok: false, intact: false, reason: `CRC32C mismatch (stored ${hex(stored)}, ` +
      `computed ${hex(actual)})` };
  }
  const bodyStart = offset + RECORD_HEADER_BYTES;
  try {
    const { record, group } = decodeTaggedBody(buf.subarray(bodyStart, bodyStart + bodyBytes));
    return { ok: true, record, group, next: bodyStart + bodyBytes };
  } catch (err) {
    if (!(err instanceof RecordFormatError)) throw err;
    return { ok: false, reason: `undecodable record with a valid CRC: ${err.message}`, intact: true };
  }
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

export interface ScannedRecord {
  readonly record: WalRecord;
  /** The group of a tagged record (the pod WAL); null when untagged. */
  readonly group: number | null;
  readonly offset: number;
}

export interface SegmentScan {
  readonly records: ScannedRecord[];
  /** Bytes from the start of the file up to the end of the last good record. */
  readonly validBytes: number;
  /** The first bad record, if any. */
  readonly problem: null | {
    readonly offset: number;
    readonly reason: string;
    /** Only the last, unfinished write is damaged: safe to cut off (see classifyDamage). */
    readonly torn: boolean;
    /** Why it is not a torn tail (when `torn` is false). */
    readonly notTornBecause: string;
    /** What to do instead of restoring from a peer, when that is the wrong remedy. */
    readonly advice?: string;
  };
}

/** Reads every record of one segment up to the first bad one, and classifies the damage. */
export function scanSegment(buf: Buffer, recordBytesMax: number): SegmentScan {
  const records: ScannedRecord[] = [];
  let offset = 0;
  while (offset < buf.byteLength) {
    const check = checkRecordAt(buf, offset, recordBytesMax);
    if (!check.ok) {
      const verdict = check.intact
        ? { torn: false, why: 'its CRC matches, so no torn write produced it' }
        : classifyDamage(buf, offset, recordBytesMax);
      const problem = { offset, reason: check.reason, torn: verdict.torn,
        notTornBecause: verdict.why };
      return { records, validBytes: offset,
        problem: check.advice === undefined ? problem : { ...problem, advice: check.advice } };
    }
    records.push({ record: check.record, group: check.group, offset });
    offset = check.next;
  }
  assert(offset === buf.byteLength, 'scan ends exactly at the end of the file');
  return { records, validBytes: offset, problem: null };
}

/**
 * Is the bad record at `badOffset` part of the last write, which the crash interrupted
 * before its fsync finished? Such a write may be torn anywhere inside (the disk persists its
 * pages in any order), but nothing can follow it. Each write ends with a commit record that
 * gives its length, and writes are issued one after another's fsync, so:
 * - the first valid commit record after the damage says where the damaged write began; if
 *   it began after the damage, the damage is in an earlier, completed write;
 * - if valid records follow that commit record, a later write followed the damaged one,
 *   which therefore was complete.
 * Otherwise (also when no commit record follows) only the unfinished last write is damaged.
 */
export function classifyDamage(buf: Buffer, badOffset: number, recordBytesMax: number):
{ torn: boolean; why: string } {
  for (let from = badOffset + 1; ;) {
    const at = findGoodRecord(buf, from, recordBytesMax);
    if (at < 0) return { torn: true, why: '' };
    const check = checkRecordAt(buf, at, recordBytesMax);
    assert(check.ok, 'findGoodRecord returns good records');
    if (check.record.kind !== 'commit') {
      from = check.next;
      continue;
    }
    const unitStart = at - check.record.unitBytes;
    if (unitStart > badOffset) {
      return { torn: false, why: `the write ending with the commit record at offset ${at} ` +
        `began at ${unitStart}, after the damage, so the damaged write had completed` };
    }
    const later = findGoodRecord(buf, check.next, recordBytesMax);
    if (later < 0) return { torn: true, why: '' };
    return { torn: false, why: `a later write follows (a valid record at offset ${later}), ` +
      'so the damaged write had completed' };
  }
}

/**
 * The first offset >= `from` where a whole, CRC-valid, decodable record starts, or -1.
 * This is what tells a torn tail (only garbage after the bad record) from corruption in the
 * middle of the log (good records after it). A false match needs a random 32-bit CRC to
 * match, so the answer is wrong with probability about 2^-32 per candidate offset.
 */
export function findGoodRecord(buf: Buffer, from: number, recordBytesMax: number): number {
  for (let offset = from; offset + RECORD_HEADER_BYTES < buf.byteLength; offset++) {
    const bodyBytes = buf.readUInt32LE(offset);
    // Cheap filters first: most offsets fail on the length or the kind byte.
    if (bodyBytes === 0 || bodyBytes > recordBytesMax) continue;
    if (offset + RECORD_HEADER_BYTES + bodyBytes > buf.byteLength) continue;
    const kind = buf.readUInt8(offset + RECORD_HEADER_BYTES) & ~TAGGED;
    if (kind < KIND_ENTRY || kind > KIND_LAST) continue;
    if (checkRecordAt(buf, offset, recordBytesMax).ok) return offset;
  }
  return -1;
}
