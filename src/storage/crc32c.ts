// CRC32C (Castagnoli) through the sse4_crc32 native addon: hardware CRC32 instructions where
// the CPU has them, a table otherwise. The package ships no type declarations, so it is
// loaded through createRequire with the one signature we use spelled out here.
import { createRequire } from 'node:module';

interface Crc32cLib {
  calculate(buf: Uint8Array, initial?: number): number;
}

const lib = createRequire(import.meta.url)('sse4_crc32') as Crc32cLib;

/** CRC32C of `buf`, continuing from `initial` (0 starts a new checksum). Unsigned 32-bit. */
export function crc32c(buf: Uint8Array, initial = 0): number {
  return lib.calculate(buf, initial) >>> 0;
}
