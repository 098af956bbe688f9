// A committed lock-service log written straight into a node's data dir, with the real
// RaftStorage and the real command and envelope encoding: what a node that ran for a while
// would read back at start-up. For the restart test and the start-up benchmark.
import type { LockCommand } from '../../src/lock/commands.js';
import { LockStateMachine } from '../../src/lock/lock-state-machine.js';
import type { Entry } from '../../src/raft/types.js';
import { encodeEnvelope } from '../../src/runtime/envelope.js';
import { RaftStorage } from '../../src/storage/raft-storage.js';

/** Owners queued on lock `crowded` at the start of the log (1,000 get a place: the
 * default bound; the rest are refused when applied). */
export const LOG_CROWD = 1_500;
const WRITE_BATCH = 2_000;

/** The i-th command: a held lock with a crowd queued on it first, then acquire/release
 * pairs over a few hundred locks, with a tick now and then. */
export function logCommandAt(i: number): LockCommand {
  if (i === 0) return { type: 'acquire', name: 'crowded', owner: 'holder', mode: 'exclusive',
    ttlMs: 86_400_000, waitMs: 0 };
  if (i <= LOG_CROWD) return { type: 'acquire', name: 'crowded', owner: `w${i}`,
    mode: 'exclusive', ttlMs: 30_000, waitMs: 3_600_000 };
  const name = `l${i % 300}`;
  const owner = `o${i % 7}`;
  if (i % 5 === 0) return { type: 'tick' };
  return i % 2 === 0 ? { type: 'acquire', name, owner, mode: 'exclusive', ttlMs: 60_000,
    waitMs: 0 } : { type: 'release', name, owner };
}

/** Writes a committed log of `count` entries (term 1, each with a request id) for a group
 * whose only voter is `nodeId`, into `dir` (a node's `<dataDir>/raft`). */
export async function writeLockLog(dir: string, nodeId: string, count: number): Promise<void> {
  const { storage } = await RaftStorage.open({ dir, fsync: false });
  const t0 = Date.now();
  try {
    for (let first = 1; first <= count; first += WRITE_BATCH) {
      const entries: Entry[] = [];
      for (let index = first; index < first + WRITE_BATCH && index <= count; index++) {
        const d = LockStateMachine.encode(logCommandAt(index - 1));
        entries.push({ index, term: 1, type: 'normal',
          data: encodeEnvelope({ t: t0, b: [{ d, c: 'writer', r: `r${index}` }] }) });
      }
      const last = entries[entries.length - 1]?.index ?? first;
      await storage.save({ hardState: { term: 1, vote: nodeId, commit: last }, entries,
        snapshot: null });
    }
  } finally {
    await storage.close();
  }
}
