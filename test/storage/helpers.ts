// Shared fixtures for the storage tests: a fresh temp dir per test and entry builders.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry, HardState, Snapshot } from '../../src/raft/types.js';

export async function freshDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'dsync-storage-'));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export function entry(index: number, term: number, text = `cmd-${index}`): Entry {
  return { index, term, type: 'normal', data: new TextEncoder().encode(text) };
}

export function entries(from: number, to: number, term: number, text?: string): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term, text));
  return out;
}

export function hs(term: number, vote: string | null, commit: number): HardState {
  return { term, vote, commit };
}

export function snapshot(index: number, term: number, text = `image-${index}`): Snapshot {
  return { meta: { index, term, config: { voters: ['a', 'b', 'c'], learners: ['d'] } },
    data: new TextEncoder().encode(text) };
}

/** Entries as comparable plain data (Uint8Array → string). */
export function plain(list: readonly Entry[]): Array<[number, number, string, string]> {
  return list.map((e) => [e.index, e.term, e.type, new TextDecoder().decode(e.data)]);
}

export async function segmentNames(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('wal-')).sort();
}
