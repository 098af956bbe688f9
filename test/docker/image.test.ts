// The container image, built from docker/Dockerfile and run for real: it runs as a non-root
// user on a read-only root filesystem, and three containers (one volume each) form a lock
// cluster that survives `docker kill` of its leader, takes the killed container back from its
// volume, and hands leadership over on `docker stop` (SIGTERM) before the container exits;
// every container serves the API reference and the cluster page.
// Every container uses the host network with loopback addresses only, and a real cluster
// token. Skipped, saying why, only where no Docker engine answers.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, type HealthBody } from '../support/cluster.js';
import { docker, dockerUnavailable, removeOrphans, testLabelArgs } from '../support/docker.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const IMAGE = process.env['DSYNC_TEST_IMAGE'] ?? 'dsync:dev';
const SIZE = 3;
/** A fresh machine builds the base and the image first (minutes); later runs hit the cache. */
const BUILD_MS = 15 * 60_000;
const START_MS = 60_000;

const unavailable = dockerUnavailable();
if (unavailable !== null) {
  process.stderr.write(`test/docker/image.test.ts skipped: ${unavailable}\n`);
}

interface Member {
  readonly id: string;
  readonly container: string;
  readonly volume: string;
  readonly httpPort: number;
  readonly peerPort: number;
}

const prefix = `dsync-ct-${process.pid}`;
const token = randomBytes(24).toString('hex');
let members: Member[] = [];

async function health(m: Member): Promise<HealthBody | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${m.httpPort}/health`,
      { signal: AbortSignal.timeout(1000) });
    return r.ok ? (await r.json()) as HealthBody : null;
  } catch {
    return null;
  }
}

async function ready(m: Member): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${m.httpPort}/ready`,
      { signal: AbortSignal.timeout(1000) });
    return r.status === 200;
  } catch {
    return false;
  }
}

/** The member that every answering member agrees leads, with its term. */
async function leaderAmong(among: readonly Member[], what: string):
  Promise<{ leader: Member; term: number }> {
  return waitFor(what, async () => {
    const hs = await Promise.all(among.map(async (m) => [m, await health(m)] as const));
    const leaders = hs.filter(([, h]) => h?.raft?.state === 'leader');
    if (leaders.length !== 1) return null;
    const [leader, lh] = leaders[0]!;
    const term = lh!.raft!.term;
    const agree = hs.every(([, h]) => h !== null && h.raft?.leader === leader.id);
    return agree ? { leader, term } : null;
  }, START_MS);
}

async function acquire(m: Member, name: string): Promise<number> {
  const body = await waitFor(`acquire ${name} through ${m.id}`, async () => {
    const r = await fetch(`http://127.0.0.1:${m.httpPort}/v1/locks/${name}/acquire`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ owner: 'container-test', ttlMs: 120_000, requestId: name }),
      signal: AbortSignal.timeout(5000),
    });
    return r.status === 200 ? (await r.json()) as { token: number } : null;
  }, START_MS, 200);
  return body.token;
}

function runArgs(m: Member, peers: string): string[] {
  const env = {
    DSYNC_SERVICE: 'lock', DSYNC_NODE_ID: m.id, DSYNC_PEERS: peers,
    DSYNC_HTTP_HOST: '127.0.0.1', DSYNC_HTTP_PORT: String(m.httpPort),
    DSYNC_PEER_HOST: '127.0.0.1', DSYNC_PEER_PORT: String(m.peerPort),
    DSYNC_CLUSTER_TOKEN: token, DSYNC_DATA_DIR: '/data',
  };
  return ['run', '-d', '--name', m.container, ...testLabelArgs(), '--network', 'host',
    '--read-only', '--tmpfs', '/tmp', '-v', `${m.volume}:/data`,
    ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), IMAGE];
}

/** Files under /data of a member's volume, as "path bytes", read by a throw-away container. */
async function volumeFiles(m: Member): Promise<string[]> {
  const list = [
    "const fs = require('node:fs'); const path = require('node:path');",
    'const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) =>',
    '  e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]);',
    "for (const f of walk('/data')) console.log(path.relative('/data', f), fs.statSync(f).size);",
  ].join('\n');
  const { stdout } = await docker(['run', '--rm', ...testLabelArgs(), '--network', 'none',
    '--read-only', '-v', `${m.volume}:/data:ro`, '--entrypoint', 'node', IMAGE, '-e', list]);
  return stdout.split('\n').filter((l) => l.length > 0);
}

/** The JSON log lines of a container, both runs of a restarted one included. */
async function logLines(m: Member): Promise<Array<Record<string, unknown>>> {
  const { stdout, stderr } = await docker(['logs', m.container]);
  return `${stdout}\n${stderr}`.split('\n').filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe.skipIf(unavailable !== null)('the dsync image', () => {
  beforeAll(async () => {
    await removeOrphans();
    // Cached layers make this a few seconds when CI (.ci/run) has already built the image.
    await promisify(execFile)('bash', [join(ROOT, 'scripts', 'build-image.sh'), '--stand-in',
      IMAGE], { timeout: BUILD_MS });
    const ports = await freePorts(2 * SIZE);
    members = Array.from({ length: SIZE }, (_, i) => ({
      id: `lock-${i}`, container: `${prefix}-lock-${i}`, volume: `${prefix}-lock-${i}`,
      httpPort: ports[2 * i]!, peerPort: ports[2 * i + 1]!,
    }));
  }, BUILD_MS + 60_000);

  afterAll(async () => {
    if (members.length === 0) return;
    await docker(['rm', '-f', ...members.map((m) => m.container)]).catch(() => undefined);
    await docker(['volume', 'rm', '-f', ...members.map((m) => m.volume)])
      .catch(() => undefined);
  });

  it('runs as uid 1000 on a read-only root filesystem, writable /tmp only', async () => {
    const probe = [
      "const fs = require('node:fs');",
      'const tryWrite = (p) => { try { fs.writeFileSync(p, "x"); return "ok"; }',
      '  catch (e) { return e.code; } };',
      'console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(),',
      '  tmp: tryWrite("/tmp/x"), app: tryWrite("/app/x"), root: tryWrite("/x") }));',
    ].join('\n');
    const { stdout } = await docker(['run', '--rm', ...testLabelArgs(), '--network', 'host',
      '--read-only', '--tmpfs', '/tmp', '--entrypoint', 'node', IMAGE, '-e', probe]);
    const seen = JSON.parse(stdout) as Record<string, unknown>;
    expect(seen).toMatchObject({ uid: 1000, gid: 1000, tmp: 'ok', root: 'EROFS' });
    expect(['EROFS', 'EACCES']).toContain(seen['app']);
    const inspect = JSON.parse((await docker(['image', 'inspect', IMAGE])).stdout) as Array<{
      Config: { User: string; Healthcheck?: unknown; Entrypoint: string[] } }>;
    const config = inspect[0]!.Config;
    expect(config.User).toBe('1000:1000');
    expect(config.Healthcheck ?? null).toBeNull();
    expect(config.Entrypoint).toEqual(['node', '/app/bin/dsync.js']);
  });

  it('three containers form a lock cluster that answers /health and /ready', async () => {
    const peers = members.map((m) => `${m.id}=127.0.0.1:${m.httpPort}:${m.peerPort}`).join(',');
    for (const m of members) {
      await docker(['volume', 'create', ...testLabelArgs(), m.volume]);
      await docker(runArgs(m, peers));
    }
    await leaderAmong(members, 'a leader of the container cluster');
    await waitFor('every container /ready', async () =>
      (await Promise.all(members.map(ready))).every(Boolean), START_MS);
    for (const m of members) {
      const h = await health(m);
      expect(h).toMatchObject({ status: 'ok', service: 'lock', node: m.id });
      // The pages come from files the image must carry beside dist/ (docs/, src/ui/).
      for (const path of ['/', '/ui/app.js', '/docs', '/docs/swagger-ui-bundle.js',
        '/openapi.json']) {
        const r = await fetch(`http://127.0.0.1:${m.httpPort}${path}`);
        expect(r.status, `${m.id} ${path}`).toBe(200);
        await r.arrayBuffer();
      }
    }
    expect(await acquire(members[1]!, 'before-kill')).toBeGreaterThan(0);
  });

  it('survives docker kill of the leader, which rejoins from its volume', async () => {
    const { leader: old, term } = await leaderAmong(members, 'the leader before the kill');
    await docker(['kill', old.container]);
    const rest = members.filter((m) => m !== old);
    const { leader: next, term: nextTerm } = await leaderAmong(rest, 'a new leader');
    expect(next.id).not.toBe(old.id);
    expect(nextTerm).toBeGreaterThan(term);
    const before = await acquire(next, 'during-outage');

    // Its volume kept what it wrote: the Raft log and hard state of lock-N.
    expect(await volumeFiles(old)).toEqual(expect.arrayContaining([expect.stringMatching(
      /^raft\/.+ [1-9]\d*$/)]));
    await docker(['start', old.container]);
    await waitFor(`${old.id} follows ${next.id} again and is caught up`, async () => {
      const h = await health(old);
      const lh = await health(next);
      return h?.raft?.state === 'follower' && h.raft.leader === next.id && lh?.raft !== undefined
        && h.raft.appliedIndex >= lh.raft.commitIndex && await ready(old);
    }, START_MS);
    expect(await acquire(old, 'after-rejoin')).toBeGreaterThan(before);
  });

  it('docker stop (SIGTERM) hands leadership over before the container exits', async () => {
    const { leader: old, term } = await leaderAmong(members, 'the leader before the stop');
    await docker(['stop', '--time', '30', old.container]);
    const state = JSON.parse((await docker(['inspect', old.container])).stdout) as Array<{
      State: { Running: boolean; ExitCode: number } }>;
    expect(state[0]!.State).toMatchObject({ Running: false, ExitCode: 0 });

    const lines = await logLines(old);
    const handover = lines.findIndex((l) => l['msg'] === 'transferring leadership before shutdown');
    expect(handover, 'the leader logged the handover').toBeGreaterThanOrEqual(0);
    const to = lines[handover]!['to'];
    const stepDown = lines.findIndex((l, i) => i > handover && l['msg'] === 'raft state change'
      && l['role'] === 'follower');
    const done = lines.findIndex((l, i) => i > handover && l['msg'] === 'shutdown complete');
    expect(stepDown, `${old.id} stepped down before exiting`).toBeGreaterThan(handover);
    expect(done).toBeGreaterThan(stepDown);

    const rest = members.filter((m) => m !== old);
    const { leader: next, term: nextTerm } = await leaderAmong(rest, 'the leader after the stop');
    expect(next.id).toBe(to);
    expect(nextTerm).toBe(term + 1);
  });
});
