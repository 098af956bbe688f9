// What a figure was measured on. A benchmark number without the machine, the disk and how
// busy the machine was is not comparable, so every script prints this beside its table.
import { readFileSync, statSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  /** The device under the temp dir (where etcd and dsync write), and its mount type. */
  disk: string;
  /** 1-minute load average when the description was taken: others may share the machine. */
  loadAvg1m: number;
}

function diskOf(dir: string): string {
  try {
    const dev = statSync(dir).dev;
    // /proc/self/mountinfo: "id parent major:minor root mountpoint opts ... - fstype source"
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const fields = line.split(' ');
      const [major, minor] = (fields[2] ?? '').split(':').map(Number);
      if (major === undefined || minor === undefined) continue;
      if (((major << 8) | minor) !== dev && major * 256 + minor !== dev) continue;
      const tail = line.split(' - ')[1]?.split(' ') ?? [];
      const rotational = readRotational(tail[1] ?? '');
      return `${tail[1] ?? '?'} (${tail[0] ?? '?'}${rotational})`;
    }
  } catch {
    // Not Linux, or /proc hidden: the rest of the description still helps.
  }
  return 'unknown';
}

function readRotational(source: string): string {
  const name = source.replace(/^\/dev\//, '');
  try {
    const flag = readFileSync(`/sys/block/${name}/queue/rotational`, 'utf8').trim();
    return flag === '1' ? ', reported rotational' : ', reported non-rotational';
  } catch {
    return '';
  }
}

export function describeMachine(): MachineInfo {
  return {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    disk: diskOf(tmpdir()),
    loadAvg1m: Number((loadavg()[0] ?? 0).toFixed(2)),
  };
}

export function machineLine(info: MachineInfo = describeMachine()): string {
  return `${info.cpus} CPUs (${info.cpuModel}), ${info.memoryGiB} GiB, node ${info.node}, ` +
    `disk ${info.disk}, load average ${info.loadAvg1m} at the end of the run`;
}
