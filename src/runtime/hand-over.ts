// On SIGTERM a leader transfers leadership to its most caught-up follower first, so that
// clients see a handover instead of an election timeout. For a pod that leads many groups
// (the queue's partitions) every transfer starts at once and one deadline covers them all.
import type { Logger } from 'pino';
import type { RaftGroup } from './raft-group.js';

/** Hands over every group this node leads; resolves once none is led here, or at the
 * deadline (a group whose transfer did not complete then is left to an election). Voters that
 * `prefer` accepts (pods that stay, on a scale-down) are chosen before the others. */
export async function handOverLeadership(groups: readonly RaftGroup[], logger: Logger,
  timeoutMs: number, prefer: (id: string) => boolean = () => true): Promise<void> {
  const led = groups.filter((g) => g.isLeader());
  for (const group of led) {
    const s = group.status();
    const best = Object.entries(s.progress ?? {})
      .filter(([id]) => id !== s.id && s.config.voters.includes(id))
      .sort((a, b) => Number(prefer(b[0])) - Number(prefer(a[0])) || b[1].match - a[1].match)[0];
    if (!best) continue;
    logger.info({ group: group.group, to: best[0] }, 'transferring leadership before shutdown');
    group.transferLeadership(best[0]);
  }
  const deadline = Date.now() + timeoutMs;
  while (led.some((g) => g.isLeader()) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
}
