// CPU time of server processes from /proc/<pid>/stat (user + system, every thread), so that
// both systems of a benchmark are charged the same way: etcd (Go, many threads) and dsync
// (one Node process per node) cannot be compared by their own metrics. On a machine whose
// cores are shared, cycles/s follow CPU share; CPU per cycle says what each system costs.
import { readFileSync } from 'node:fs';
import { assert } from '../../src/assert.js';

/** Kernel clock ticks per second (`getconf CLK_TCK`): 100 on every Linux we run on. */
export const CLOCK_TICKS_PER_S = 100;

/** CPU seconds (user + system) a process has used so far; 0 when /proc is not there. */
export function processCpuSeconds(pid: number): number {
  assert(Number.isSafeInteger(pid) && pid > 0, `pid must be a positive integer, got ${pid}`);
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0;
  }
  // The command name (field 2) is in parentheses and may hold spaces: count from after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  assert(Number.isFinite(utime) && Number.isFinite(stime), `/proc/${pid}/stat has utime/stime`);
  return (utime + stime) / CLOCK_TICKS_PER_S;
}

/** CPU seconds of several processes together. */
export function totalCpuSeconds(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
}

/**
 * Measures the CPU the given processes use while `run` runs: cores busy on average, and CPU
 * ms per operation at the throughput `run` reports.
 */
export async function withCpu<T extends { opsPerSec: number }>(
  pids: readonly number[], run: () => Promise<T>,
): Promise<{ value: T; cores: number; cpuMsPerOp: number }> {
  const startCpuS = totalCpuSeconds(pids);
  const startNs = process.hrtime.bigint();
  const value = await run();
  const wallS = Number(process.hrtime.bigint() - startNs) / 1e9;
  const cores = wallS > 0 ? (totalCpuSeconds(pids) - startCpuS) / wallS : 0;
  const cpuMsPerOp = value.opsPerSec > 0 ? (cores / value.opsPerSec) * 1000 : 0;
  return { value, cores: Number(cores.toFixed(2)), cpuMsPerOp: Number(cpuMsPerOp.toFixed(4)) };
}
