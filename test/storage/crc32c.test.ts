// CRC32C golden values: the checksum behind every WAL record, snapshot file and embedded-store
// record. The native library behind src/storage/crc32c.ts may change (it did: sse4_crc32 was
// replaced by @node-rs/crc32, which ships prebuilt binaries); files written before must still
// verify. The record and snapshot bytes below were written by the earlier library.
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/storage/crc32c.js';
import { decodeSnapshot, encodeSnapshot } from '../../src/storage/snapshot-file.js';
import { encodeRecord, scanSegment, type WalRecord } from '../../src/storage/wal-record.js';
import { snapshot } from './helpers.js';

const RECORDS: readonly WalRecord[] = [
  { kind: 'entry', entry: { term: 3, index: 17, type: 'normal',
    data: new TextEncoder().encode('acquire lock-a') } },
  { kind: 'hardState', hardState: { term: 3, commit: 17, vote: 'lock-1' } },
  { kind: 'truncate', index: 12 },
  { kind: 'reset', index: 40, term: 5 },
  { kind: 'commit', unitBytes: 123 },
];

const SEGMENT_HEX =
  '20000000f687014701030000000000000011000000000000000061637175697265206c6f636b2d6118000000' +
  '23e2fcfb0203000000000000001100000000000000016c6f636b2d3109000000c6a27d75030c000000000000' +
  '0011000000324500a40428000000000000000500000000000000090000008f180c2f057b00000000000000';

const SNAPSHOT_HEX =
  '44534e500100000070ca49752a000000000000000700000000000000290000007b22766f74657273223a5b22' +
  '61222c2262222c2263225d2c226c6561726e657273223a5b2264225d7d696d6167652d3432';

describe('CRC32C (Castagnoli)', () => {
  it('gives the RFC 3720 (iSCSI) check values', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
  });

  it('continues from an initial value as if the buffers were one', () => {
    const enc = new TextEncoder();
    expect(crc32c(enc.encode('56789'), crc32c(enc.encode('1234')))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0), 0x12345678)).toBe(0x12345678);
    expect(crc32c(enc.encode('123456789'))).toBeGreaterThan(0x7fffffff); // unsigned
  });

  it('verifies WAL records written by the earlier library, and writes the same bytes', () => {
    const segment = Buffer.from(SEGMENT_HEX, 'hex');
    const scan = scanSegment(segment, 1 << 20);
    expect(scan.problem).toBeNull();
    expect(scan.records.map((r) => r.record)).toEqual(RECORDS);
    expect(Buffer.concat(RECORDS.map(encodeRecord)).toString('hex')).toBe(SEGMENT_HEX);
  });

  it('verifies a snapshot file written by the earlier library, and writes the same bytes', () => {
    const file = Buffer.from(SNAPSHOT_HEX, 'hex');
    expect(decodeSnapshot(file)).toEqual({ ok: true, snapshot: snapshot(42, 7) });
    expect(encodeSnapshot(snapshot(42, 7)).toString('hex')).toBe(SNAPSHOT_HEX);
  });
});
