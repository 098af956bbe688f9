// Node identity on the data volume, with real files: generated at first boot and stored with
// the cluster id, kept across restarts, refused on another cluster's volume, a new id on an
// empty volume under an old pod name, and the name adopted for data older than identities.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ClusterIdMismatchError, IDENTITY_FILE, IdentityFileError, generateNodeId, loadOrCreateIdentity,
} from '../../src/discovery/identity.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dsync-identity-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const fixed = (hex: string) => (n: number): Buffer => Buffer.from(hex.repeat(n), 'hex');

describe('node identity', () => {
  it('is generated at first boot, stored with the cluster id, and kept on restart', async () => {
    const first = await loadOrCreateIdentity({ dataDir: join(dir, 'lock-1'), clusterId: 'prod',
      name: 'lock-1', random: fixed('ab'), nowMs: () => 1_700_000_000_000 });
    expect(first).toMatchObject({ created: true, dataEmpty: true, adopted: false,
      identity: { nodeId: 'lock-1-abababab', clusterId: 'prod', name: 'lock-1', version: 1 } });
    const stored = JSON.parse(await readFile(join(dir, 'lock-1', IDENTITY_FILE), 'utf8')) as
      Record<string, unknown>;
    expect(stored).toEqual({ ...first.identity });
    await mkdir(join(dir, 'lock-1', 'raft'));
    const again = await loadOrCreateIdentity({ dataDir: join(dir, 'lock-1'), clusterId: 'prod',
      name: 'lock-1', random: fixed('cd') });
    expect(again).toMatchObject({ created: false, dataEmpty: false,
      identity: { nodeId: 'lock-1-abababab' } });
  });

  it('an empty volume under an old pod name gets a new id', async () => {
    const a = await loadOrCreateIdentity({ dataDir: join(dir, 'a'), clusterId: 'prod',
      name: 'lock-1' });
    const b = await loadOrCreateIdentity({ dataDir: join(dir, 'b'), clusterId: 'prod',
      name: 'lock-1' });
    expect(a.identity.nodeId).toMatch(/^lock-1-[0-9a-f]{8}$/);
    expect(b.identity.nodeId).not.toBe(a.identity.nodeId);
  });

  it('refuses to start on a volume of another cluster, saying what to do', async () => {
    await loadOrCreateIdentity({ dataDir: dir, clusterId: 'blue', name: 'lock-0' });
    const err = await loadOrCreateIdentity({ dataDir: dir, clusterId: 'green', name: 'lock-0' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClusterIdMismatchError);
    expect((err as ClusterIdMismatchError).code).toBe('INVALID_ARGUMENT');
    expect((err as Error).message).toMatch(/belongs to cluster "blue".*configured for cluster "green".*empty volume/);
  });

  it('keeps the name as node id for data written before identities existed', async () => {
    await mkdir(join(dir, 'raft'));
    const r = await loadOrCreateIdentity({ dataDir: dir, clusterId: 'prod', name: 'lock-2' });
    expect(r).toMatchObject({ created: true, adopted: true, dataEmpty: false,
      identity: { nodeId: 'lock-2' } });
  });

  it('refuses a damaged identity file and a bad cluster id', async () => {
    await writeFile(join(dir, IDENTITY_FILE), '{"version": 1, "clusterId": "x"');
    await expect(loadOrCreateIdentity({ dataDir: dir, clusterId: 'x', name: 'lock-0' }))
      .rejects.toBeInstanceOf(IdentityFileError);
    await writeFile(join(dir, IDENTITY_FILE), '{"version": 7}');
    await expect(loadOrCreateIdentity({ dataDir: dir, clusterId: 'x', name: 'lock-0' }))
      .rejects.toThrow(/not a version 1 dsync identity/);
    await expect(loadOrCreateIdentity({ dataDir: join(dir, 'n'), clusterId: 'Bad_Id',
      name: 'lock-0' })).rejects.toThrow(/cluster id "Bad_Id"/);
  });

  it('generated ids are valid node ids for any pod name', () => {
    const long = `${'x'.repeat(70)}-3`;
    for (const name of ['lock-0', long, 'Weird.Name_', '---']) {
      const id = generateNodeId(name, fixed('0f'));
      expect(id).toMatch(/^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/);
      expect(id.endsWith('-0f0f0f0f')).toBe(true);
    }
  });
});
