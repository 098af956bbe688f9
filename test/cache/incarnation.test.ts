// The incarnation record of a cache pod (src/cache/incarnation.ts) and what it lets the core
// assume about copies of the pod's earlier life, on real files.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  INCARNATION_FILE, nextIncarnation, priorCopiesOf, recordIncarnation,
} from '../../src/cache/incarnation.js';

describe('cache incarnation record', () => {
  const dirs: string[] = [];
  const tmp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'dsync-inc-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

  it('a missing record (first start or lost data dir) is not a clean shutdown', () => {
    const dir = tmp();
    const first = nextIncarnation(dir);
    expect(first.record).toBe('missing');
    expect(priorCopiesOf(first.record)).toBe('unknown');
  });

  it('a crash leaves an unclean record; only a drained life recorded clean skips the grace',
    () => {
      const dir = tmp();
      const a = nextIncarnation(dir);
      const b = nextIncarnation(dir); // the first life crashed: nothing was recorded on exit
      expect(b.record).toBe('unclean');
      expect(priorCopiesOf(b.record)).toBe('unknown');
      expect(b.incarnation).toBeGreaterThan(a.incarnation);
      recordIncarnation(dir, b.incarnation, true);
      expect(readFileSync(join(dir, INCARNATION_FILE), 'utf8')).toBe(`${b.incarnation} clean\n`);
      const c = nextIncarnation(dir);
      expect(c.record).toBe('clean');
      expect(priorCopiesOf(c.record)).toBe('none');
      expect(c.incarnation).toBeGreaterThan(b.incarnation);
      // The clean mark is used once: the new life is unclean until it drains itself.
      expect(nextIncarnation(dir).record).toBe('unclean');
    });

  it('incarnations grow even when the wall clock is behind the record', () => {
    const dir = tmp();
    const ahead = Date.now() + 10_000_000;
    writeFileSync(join(dir, INCARNATION_FILE), `${ahead}\n`);
    expect(nextIncarnation(dir).incarnation).toBe(ahead + 1);
    writeFileSync(join(dir, INCARNATION_FILE), 'garbage\n');
    expect(() => nextIncarnation(dir)).toThrow(/holds no incarnation number/);
  });
});
