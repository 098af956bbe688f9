// CRC32C (Castagnoli) through @node-rs/crc32: SIMD / hardware CRC instructions where the CPU
// has them, and a prebuilt binary for every platform in its optional dependencies, so that
// neither a container image nor a user's machine needs a compiler to install dsync.
// Every WAL record, snapshot file and embedded-store record is checked with it: the golden
// values in test/storage/crc32c.test.ts keep files written by earlier builds readable.
import { crc32c as nativeCrc32c } from '@node-rs/crc32';

/** CRC32C of `buf`, continuing from `initial` (0 starts a new checksum). Unsigned 32-bit. */
export function crc32c(buf: Uint8Array, initial = 0): number {
  return nativeCrc32c(buf, initial) >>> 0;
}
