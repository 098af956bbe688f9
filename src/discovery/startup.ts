// Start-up of a node that discovers its peers: ask the pods of the headless Service who they
// are, decide (bootstrap.ts) whether to recover, bootstrap a new cluster, join an existing
// one, keep waiting or refuse, and repeat with backoff while the answer is "wait", up to a
// deadline. The node answers /health meanwhile, so that its peers can ask it too.
import type { Logger } from 'pino';
import { InvalidArgumentError } from '../errors.js';
import { decideBootstrap, type BootstrapDecision, type PeerAnswer } from './bootstrap.js';
import { DiscoveryError } from './dns.js';
import type { PodDirectory } from './pod-directory.js';

/** Pause between two rounds of questions while waiting, doubling up to the max. */
export const STARTUP_POLL_MS_MIN = 100;
export const STARTUP_POLL_MS_MAX = 2000;

export type StartDecision = Extract<BootstrapDecision, { kind: 'recover' | 'bootstrap' | 'join' }>;

export interface StartupOptions {
  readonly directory: PodDirectory;
  readonly clusterId: string;
  readonly nodeId: string;
  /** This pod's StatefulSet and ordinal. */
  readonly statefulSet: string;
  readonly ordinal: number;
  /** The StatefulSet's pods when the cluster is created: ordinals 0..replicas-1. */
  readonly replicas: number;
  /** The node's data dir holds Raft state. */
  readonly hasData: boolean;
  readonly timeoutMs: number;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

/** What the pods answered, with every initial ordinal the DNS does not list yet as silent. */
export function peerAnswers(o: Pick<StartupOptions, 'directory' | 'statefulSet' | 'ordinal' |
  'replicas'>): PeerAnswer[] {
  const out = new Map<number, PeerAnswer>();
  for (let i = 0; i < o.replicas; i++) {
    if (i !== o.ordinal) out.set(i, { name: `${o.statefulSet}-${i}`, ordinal: i, answer: null });
  }
  for (const r of o.directory.pods()) {
    if (r.ordinal !== o.ordinal) out.set(r.ordinal, { name: r.pod, ordinal: r.ordinal,
      answer: r.answer });
  }
  return [...out.values()].sort((a, b) => a.ordinal - b.ordinal);
}

/** Decides how the node starts; throws InvalidArgumentError on a refusal (a configuration
 * that can never start) and DiscoveryError when the peers did not answer in time. */
export async function decideStart(o: StartupOptions): Promise<StartDecision> {
  if (o.hasData) return { kind: 'recover' };
  const deadline = Date.now() + o.timeoutMs;
  let pauseMs = STARTUP_POLL_MS_MIN;
  let lastReason = '';
  for (;;) {
    try {
      await o.directory.refresh();
    } catch (err) {
      o.logger.warn({ err }, 'discovery: could not ask DNS for the pods; asking again');
    }
    const d = decideBootstrap({ clusterId: o.clusterId, nodeId: o.nodeId, ordinal: o.ordinal,
      initialReplicas: o.replicas, hasData: o.hasData, peers: peerAnswers(o) });
    if (d.kind === 'refuse') throw new InvalidArgumentError('clusterId', d.reason);
    if (d.kind !== 'wait') return d;
    if (d.reason !== lastReason) {
      o.logger.info({ reason: d.reason }, 'discovery: waiting before start-up');
      lastReason = d.reason;
    }
    if (Date.now() + pauseMs > deadline || o.signal?.aborted === true) {
      throw new DiscoveryError(`start-up gave up after ${o.timeoutMs} ms: ${d.reason}. Check ` +
        'that the other pods run and answer /health on their http port (the headless ' +
        'Service must publish not-ready addresses), or raise --bootstrap-timeout-ms');
    }
    await new Promise((r) => setTimeout(r, pauseMs));
    pauseMs = Math.min(2 * pauseMs, STARTUP_POLL_MS_MAX);
  }
}
