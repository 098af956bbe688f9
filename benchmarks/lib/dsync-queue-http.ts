// The queue routes of one dsync node, for the benchmark (see DsyncPoolHttp: no retries, no
// requestIds, the caller picks the node, so the figures are the server's).
import { DsyncPoolHttp, REQUEST_GRACE_MS } from './dsync-lock-cluster.js';

export interface DsyncDelivery {
  id: string;
  receipt: string;
  deliveries: number;
}

const path = (topic: string, route = ''): string =>
  `/v1/queues/${encodeURIComponent(topic)}${route === '' ? '' : `/${route}`}`;
const timeout = { timeoutMs: REQUEST_GRACE_MS };

export class DsyncQueueHttp extends DsyncPoolHttp {
  async publish(topic: string, body: unknown): Promise<void> {
    await this.request('POST', path(topic, 'messages'), { body }, { ...timeout, expected: 201 });
  }

  async publishBatch(topic: string, bodies: readonly unknown[]): Promise<void> {
    await this.request('POST', path(topic, 'messages'),
      { messages: bodies.map((body) => ({ body })) }, { ...timeout, expected: 201 });
  }

  async receive(topic: string, group: string, max: number, waitMs: number,
    signal?: AbortSignal): Promise<DsyncDelivery[]> {
    const r = await this.request('POST', path(topic, 'receive'), { group, max, waitMs },
      { timeoutMs: waitMs + REQUEST_GRACE_MS, ...(signal === undefined ? {} : { signal }) }) as
      { messages: DsyncDelivery[] };
    return r.messages;
  }

  async ack(topic: string, group: string, receipts: readonly string[]): Promise<number> {
    const r = await this.request('POST', path(topic, 'ack'), { group, receipts }, timeout) as
      { acked: number };
    return r.acked;
  }

  /** PUT of the topic's config: creates it. */
  async configure(topic: string, config: Record<string, number>): Promise<void> {
    await this.request('PUT', path(topic), config, timeout);
  }

  /** The node id of the topic's partition leader (null while there is none). */
  async leaderOf(topic: string): Promise<string | null> {
    const r = await this.request('GET', path(topic), undefined, timeout) as
      { leader: string | null };
    return r.leader;
  }
}
