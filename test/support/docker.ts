// Docker from tests: the `docker` CLI run by execFile (no shell), containers labelled with
// the test runner's pid so that a runner killed mid-test leaves nothing behind for long:
// the next run removes containers and volumes whose runner is gone.
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** Label on every container and volume a test creates: the runner's pid. */
export const TEST_PID_LABEL = 'io.dsync.test-pid';
const DOCKER_CALL_MS = 120_000;

export interface DockerResult { readonly stdout: string; readonly stderr: string }

export async function docker(args: readonly string[], timeoutMs = DOCKER_CALL_MS):
  Promise<DockerResult> {
  try {
    const r = await run('docker', [...args], { timeout: timeoutMs, maxBuffer: 64 << 20 });
    return { stdout: r.stdout.trim(), stderr: r.stderr.trim() };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`docker ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`,
      { cause: err });
  }
}

/** Null when a Docker engine answers, else why not (the test skips with that reason). */
export function dockerUnavailable(): string | null {
  const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'],
    { encoding: 'utf8', timeout: 20_000 });
  if (r.error !== undefined) return `no docker CLI here (${r.error.message})`;
  if (r.status !== 0) {
    return `no Docker engine answers (${r.stderr.trim().split('\n')[0] ?? ''}); ` +
      'start one with scripts/docker-up.sh';
  }
  return null;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Removes containers and volumes left by test runners that no longer exist. */
export async function removeOrphans(): Promise<void> {
  const byPid = async (kind: 'ps' | 'volume'): Promise<Array<[string, number]>> => {
    const args = kind === 'ps'
      ? ['ps', '-a', '--filter', `label=${TEST_PID_LABEL}`, '--format',
        `{{.ID}} {{.Label "${TEST_PID_LABEL}"}}`]
      : ['volume', 'ls', '--filter', `label=${TEST_PID_LABEL}`, '--format',
        `{{.Name}} {{.Label "${TEST_PID_LABEL}"}}`];
    const out = (await docker(args)).stdout;
    return out.split('\n').filter((l) => l.length > 0)
      .map((l) => l.split(' ') as [string, string]).map(([id, pid]) => [id, Number(pid)]);
  };
  const deadContainers = (await byPid('ps')).filter(([, pid]) => !alive(pid));
  if (deadContainers.length > 0) await docker(['rm', '-f', ...deadContainers.map(([id]) => id)]);
  const deadVolumes = (await byPid('volume')).filter(([, pid]) => !alive(pid));
  if (deadVolumes.length > 0) await docker(['volume', 'rm', ...deadVolumes.map(([id]) => id)]);
}

/** `--label` arguments that mark what this runner creates. */
export function testLabelArgs(): string[] {
  return ['--label', `${TEST_PID_LABEL}=${process.pid}`];
}
