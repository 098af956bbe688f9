// Who the pods of this node's StatefulSet are, by the DNS of the headless Service, and which
// Raft node id each one runs under now. Ids are generated at first boot (identity.ts), so a
// pod is asked: GET /health on its http port answers `node` and an `identity` block with the
// cluster id, whether it holds a cluster and its voters. Asked again on every refresh: a pod
// that came back with an empty volume answers with a new id.
//
// What is kept: for each pod, the ports its SRV records give and its last answer; for each
// node id, the pod it was last seen in, so that a member whose pod does not answer right now
// (restarting, being rescheduled) keeps its address. A pod's host name is resolved on every
// connect (dns.ts `lookup`), never here.
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import type { PeerAnswer } from './bootstrap.js';
import type { HeadlessServiceDns, Member } from './dns.js';
import { ordinalOf } from './membership.js';

/** Deadline of one identity question to one pod. */
export const IDENTITY_FETCH_TIMEOUT_MS = 1500;
/** Largest /health answer read while asking a pod who it is. */
const HEALTH_BYTES_MAX = 256 * 1024;
/** Node ids remembered with their pod: at most this many (pods come and go). */
export const KNOWN_IDS_MAX = 256;

export type Answer = NonNullable<PeerAnswer['answer']>;

export interface PodRecord {
  readonly pod: string;
  readonly ordinal: number;
  /** Stable DNS name of the pod. */
  readonly host: string;
  readonly peerPort: number;
  readonly httpPort: number | null;
  /** Its answer on the last refresh, or null when it did not answer. */
  readonly answer: Answer | null;
}

export interface PodDirectoryOptions {
  readonly dns: HeadlessServiceDns;
  /** This pod's name: it is not asked and not listed. */
  readonly self: string;
  readonly logger: Logger;
  /** How a pod is asked who it is (tests may replace it); default GET /health. */
  readonly ask?: (url: string) => Promise<Answer | null>;
}

/** Reads `{node, identity: {clusterId, hasCluster, voters}}` from a /health body. */
export function answerOf(body: unknown): Answer | null {
  const b = body as { node?: unknown; identity?: { clusterId?: unknown; hasCluster?: unknown;
    voters?: unknown } } | null;
  const id = b?.identity;
  if (typeof b?.node !== 'string' || typeof id?.clusterId !== 'string' ||
    typeof id.hasCluster !== 'boolean') return null;
  const voters = Array.isArray(id.voters) && id.voters.every((v) => typeof v === 'string')
    ? id.voters : undefined;
  return { nodeId: b.node, clusterId: id.clusterId, hasCluster: id.hasCluster,
    ...(voters === undefined ? {} : { voters }) };
}

export class PodDirectory {
  private readonly records = new Map<string, PodRecord>();
  /** node id → pod, the last time that id answered. */
  private readonly podOfId = new Map<string, string>();
  private readonly listeners: Array<() => void> = [];
  private readonly agent: Agent;
  private readonly ask: (url: string) => Promise<Answer | null>;
  private refreshing: Promise<void> | null = null;

  constructor(private readonly o: PodDirectoryOptions) {
    this.agent = new Agent({ connections: 4, keepAliveTimeout: 5000,
      connect: { timeout: IDENTITY_FETCH_TIMEOUT_MS, lookup: o.dns.lookup } });
    this.ask = o.ask ?? ((url) => this.askHealth(url));
  }

  /** The other pods the DNS listed, with their last answers, by ordinal. */
  pods(): PodRecord[] {
    return [...this.records.values()].sort((a, b) => a.ordinal - b.ordinal);
  }

  /** The pod a node id was last seen in. */
  podOf(nodeId: string): PodRecord | undefined {
    const pod = this.podOfId.get(nodeId);
    return pod === undefined ? undefined : this.records.get(pod);
  }

  /** Node ids and their pods' peer addresses (every id seen, this node's own left out). */
  peerAddresses(selfId: string): Map<string, { host: string; port: number }> {
    const out = new Map<string, { host: string; port: number }>();
    for (const [id, pod] of this.podOfId) {
      const r = this.records.get(pod);
      if (r !== undefined && id !== selfId) out.set(id, { host: r.host, port: r.peerPort });
    }
    return out;
  }

  /** The HTTP URL of the pod a node id runs in. */
  urlOf(nodeId: string): string | undefined {
    const r = this.podOf(nodeId);
    return r?.httpPort === null || r === undefined ? undefined : `http://${r.host}:${r.httpPort}`;
  }

  /** Called after a refresh that changed an address or an id. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Asks DNS for the pods and every pod for its id; concurrent calls share one round. */
  refresh(): Promise<void> {
    this.refreshing ??= this.refreshOnce().finally(() => { this.refreshing = null; });
    return this.refreshing;
  }

  private async refreshOnce(): Promise<void> {
    const [peer, http] = await Promise.all([this.o.dns.members('peer'),
      this.o.dns.members('http').catch(() => [] as Member[])]);
    const httpPort = new Map(http.map((m) => [m.pod, m.port]));
    const found = peer.filter((m) => m.pod !== this.o.self && ordinalOf(m.pod) !== null);
    const answers = await Promise.all(found.map(async (m) => {
      const port = httpPort.get(m.pod);
      if (port === undefined) return null;
      return this.ask(`http://${m.host}:${port}`).catch(() => null);
    }));
    let changed = false;
    found.forEach((m, i) => {
      const before = this.records.get(m.pod);
      const rec: PodRecord = { pod: m.pod, ordinal: ordinalOf(m.pod)!, host: m.host,
        peerPort: m.port, httpPort: httpPort.get(m.pod) ?? null, answer: answers[i] ?? null };
      this.records.set(m.pod, rec);
      if (before?.peerPort !== rec.peerPort || before.httpPort !== rec.httpPort) changed = true;
      if (rec.answer !== null && this.podOfId.get(rec.answer.nodeId) !== m.pod) {
        this.learn(rec.answer.nodeId, m.pod);
        changed = true;
      }
    });
    if (changed) for (const l of this.listeners) l();
  }

  /** Remembers that `nodeId` runs in `pod`: an older id of that pod is no longer reachable
   * there (its volume is gone), but stays known for the reconciler through podOfNodeId. */
  private learn(nodeId: string, pod: string): void {
    for (const [id, p] of this.podOfId) if (p === pod && id !== nodeId) this.podOfId.delete(id);
    this.podOfId.set(nodeId, pod);
    while (this.podOfId.size > KNOWN_IDS_MAX) {
      const oldest = this.podOfId.keys().next().value;
      if (oldest === undefined) break;
      this.podOfId.delete(oldest);
    }
    this.o.logger.info({ nodeId, pod }, 'discovered a peer');
  }

  private async askHealth(url: string): Promise<Answer | null> {
    const signal = AbortSignal.timeout(IDENTITY_FETCH_TIMEOUT_MS);
    const res = await request(`${url}/health`, { dispatcher: this.agent, signal,
      headersTimeout: IDENTITY_FETCH_TIMEOUT_MS, bodyTimeout: IDENTITY_FETCH_TIMEOUT_MS });
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const c of res.body) {
      bytes += (c as Buffer).byteLength;
      if (bytes > HEALTH_BYTES_MAX) {
        res.body.destroy();
        return null;
      }
      chunks.push(c as Buffer);
    }
    if (res.statusCode !== 200) return null;
    return answerOf(JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
