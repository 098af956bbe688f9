// One Raft node for the commit benchmark, in its own process: the real runtime (RaftHost,
// PeerTransport, RaftStorage with fsync) with a state machine that does nothing, driven by the
// parent over IPC. The leader runs the closed-loop load itself, so the figures are the Raft
// commit path alone: propose → replicate → fsync on a majority → apply on the leader.
import { silentLogger } from '../../src/observability/logger.js';
import { RaftHost } from '../../src/runtime/raft-host.js';
import { encode } from '../../src/runtime/envelope.js';
import type { StateMachine } from '../../src/runtime/state-machine.js';
import { PeerTransport } from '../../src/transport/peer-transport.js';
import { runLoad } from './load.js';

interface Init { id: string; ids: string[]; ports: number[]; dir: string; fsync: boolean }
type Req =
  | { type: 'status' }
  | { type: 'load'; concurrency: number; durationMs: number; valueBytes: number };

const init = JSON.parse(process.argv[2] ?? '{}') as Init;
const noop: StateMachine = {
  apply: (_cmd, ctx) => ctx.index,
  snapshot: () => encode(null),
  restore: () => undefined,
};
const peers = new Map(init.ids.filter((x) => x !== init.id)
  .map((x) => [x, { host: '127.0.0.1', port: init.ports[init.ids.indexOf(x)]! }] as const));
const transport = new PeerTransport({
  nodeId: init.id, listen: { host: '127.0.0.1', port: init.ports[init.ids.indexOf(init.id)]! },
  peers, clusterToken: 'bench', sendQueueBytesMax: 64 << 20, frameBytesMax: 32 << 20,
  reconnectMsMin: 20, reconnectMsMax: 500,
});
const host = new RaftHost(init.id, transport, silentLogger(), 50);
const group = await host.openGroup({
  group: 0, dataDir: init.dir, bootstrap: { voters: init.ids, learners: [] }, fsync: init.fsync,
  stateMachine: noop, snapshotEntries: 100_000,
});
await transport.start();
host.start();

process.on('message', (m: Req) => {
  void (async () => {
    if (m.type === 'status') {
      process.send?.({ type: 'status', leader: group.isLeader() });
      return;
    }
    const value = new Uint8Array(m.valueBytes).fill(118);
    const r = await runLoad({
      label: `dsync raft, ${m.concurrency} in flight`, concurrency: m.concurrency,
      durationMs: m.durationMs,
      op: async () => { await group.propose(value, { timeoutMs: 10_000 }); },
    });
    process.send?.({ type: 'result', result: r });
  })();
});
process.on('SIGTERM', () => {
  void host.close().then(() => transport.close()).then(() => process.exit(0));
});
process.send?.({ type: 'ready' });
