// The nemesis of the fault tests (locks, queue): seeded faults on a real-process cluster, one
// at a time, each undone before the next: kill -9 and restart, SIGSTOP and SIGCONT, a node cut
// off from all others, a link cut both ways. Logs what it does with the time since it began.
import type { Rand } from '../../src/raft/rand.js';
import type { Cluster } from './cluster.js';
import { sleep } from './wait.js';

export type Fault = 'crash' | 'pause' | 'isolate' | 'cut';

export async function nemesis(c: Cluster, rand: Rand, stop: () => boolean, log: string[]):
  Promise<void> {
  const faults: Fault[] = ['crash', 'pause', 'isolate', 'cut'];
  const t0 = performance.now();
  const say = (s: string): void => {
    log.push(`${((performance.now() - t0) / 1000).toFixed(1)}s ${s}`);
  };
  while (!stop()) {
    await sleep(rand.int(500, 2000));
    if (stop()) return;
    const fault = faults[rand.int(0, faults.length)]!;
    const n = c.nodes[rand.int(0, c.nodes.length)]!;
    const other = c.nodes.filter((x) => x !== n)[rand.int(0, c.nodes.length - 1)]!;
    const holdMs = rand.int(500, 3000);
    say(`${fault} ${n.id}${fault === 'cut' ? `<->${other.id}` : ''} for ${holdMs} ms`);
    if (fault === 'crash') await n.crash();
    else if (fault === 'pause') n.pause();
    else if (fault === 'isolate') c.isolate(n.id);
    else c.partition(n.id, other.id);
    await sleep(holdMs);
    if (fault === 'crash') n.start();
    else if (fault === 'pause') n.resume();
    else c.healAll();
    say(`undo ${fault} ${n.id}`);
  }
}

/** Heals every link and brings every node back (resumed or restarted), then waits for each
 * to answer /health. */
export async function healEverything(c: Cluster, timeoutMs = 60_000): Promise<void> {
  c.healAll();
  for (const n of c.nodes) {
    if (n.running) n.resume();
    else n.start();
  }
  await Promise.all(c.nodes.map((n) => n.waitHealthy(timeoutMs)));
}
