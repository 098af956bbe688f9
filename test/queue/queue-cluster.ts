// Helpers for process tests of the queue service: a cluster of real `dsync serve --service
// queue` pods, the partitions each pod reports in /health, and the Queues routes of API.md.
import { expect } from 'vitest';
import { partitionOf, planPlacement } from '../../src/ring/placement.js';
import { Cluster, type ClusterNode, type ClusterOptions } from '../support/cluster.js';
import { call, get, post, type JsonResponse } from '../support/http.js';
import { waitFor } from '../support/wait.js';

export interface PartitionRow {
  partition: number;
  state: string;
  term: number;
  leader: string | null;
  commitIndex: number;
  appliedIndex: number;
  voters: string[];
  learners: string[];
}

export interface Received {
  id: string;
  body: unknown;
  key?: string;
  receipt: string;
  deliveries: number;
  publishedAt: number;
}

export interface ErrorBody {
  error: { code: string; message: string; [k: string]: unknown };
}

export interface TopicBody {
  topic: string;
  partition: number;
  leader: string;
  groups: Record<string, { ready: number; inflight: number; delayed: number; parked: number }>;
  dlq: number;
  messages: number;
}

/** Starts a queue cluster and waits until every pod is ready (every partition it hosts knows
 * its leader). */
export async function startQueueCluster(opts: Omit<ClusterOptions, 'service'> &
  { partitions: number }): Promise<Cluster> {
  const { partitions, ...rest } = opts;
  const cluster = await Cluster.start({ ...rest, service: 'queue', startTimeoutMs: 60_000,
    extraArgs: ['--partitions', String(partitions), ...(rest.extraArgs ?? [])] });
  try {
    const running = cluster.nodes.filter((n) => n.running);
    await waitReady(running);
    await preferredLeaders(running, partitions);
  } catch (err) {
    await cluster.stop(true);
    throw err;
  }
  return cluster;
}

export async function waitReady(nodes: readonly ClusterNode[], timeoutMs = 60_000):
  Promise<void> {
  await Promise.all(nodes.map((n) => waitFor(`${n.id} /ready`, async () => {
    const r = await fetch(`${n.url}/ready`, { signal: AbortSignal.timeout(2000) });
    return r.ok;
  }, timeoutMs, 100)));
}

export async function partitionsOf(n: ClusterNode): Promise<PartitionRow[] | null> {
  const h = await n.health(2000);
  return (h?.partitions as PartitionRow[] | undefined) ?? null;
}

/** Every partition's leader, once every running pod that hosts it agrees (highest term). */
export async function leaders(nodes: readonly ClusterNode[], partitions: number,
  timeoutMs = 30_000): Promise<Map<number, string>> {
  return waitFor('a leader every replica agrees on, for every partition', async () => {
    const views = await Promise.all(nodes.filter((n) => n.running)
      .map(async (n) => [n.id, await partitionsOf(n)] as const));
    const out = new Map<number, string>();
    for (let p = 0; p < partitions; p++) {
      const rows = views.flatMap(([id, ps]) =>
        (ps ?? []).filter((r) => r.partition === p).map((r) => ({ id, r })));
      const leader = rows.find(({ id, r }) => r.state === 'leader' && r.leader === id);
      if (leader === undefined) return null;
      if (!rows.every(({ r }) => r.leader === leader.r.leader && r.term === leader.r.term)) {
        return null;
      }
      out.set(p, leader.id);
    }
    return out;
  }, timeoutMs, 100);
}

/** Waits until every partition is led by its preferred pod (the first of its replica set in
 * the placement of `nodes`): the leader transfers that follow a start are over. */
export async function preferredLeaders(nodes: readonly ClusterNode[], partitions: number,
  timeoutMs = 60_000): Promise<void> {
  const sets = planPlacement(nodes.map((n) => n.id), partitions,
    Math.min(3, nodes.length)).sets;
  await waitFor('every partition led by its preferred pod', async () => {
    const led = await leaders(nodes, partitions, 2000).catch(() => null);
    return led !== null && [...led].every(([p, id]) => sets[p]?.[0] === id);
  }, timeoutMs, 200);
}

export const topicPath = (topic: string, op?: string): string =>
  `/v1/queues/${encodeURIComponent(topic)}${op === undefined ? '' : `/${op}`}`;

export function partitionOfTopic(topic: string, partitions: number): number {
  return partitionOf(topic, partitions);
}

/** The Queues routes of API.md against one base URL. */
export class QueueApi {
  constructor(readonly base: string, private readonly clientId?: string) {}

  private send<T>(method: string, path: string, body?: unknown, timeoutMs?: number):
    Promise<JsonResponse<T & ErrorBody>> {
    if (this.clientId === undefined) {
      return call<T & ErrorBody>(this.base, method, path, body, timeoutMs);
    }
    return fetch(this.base + path, {
      method, signal: AbortSignal.timeout(timeoutMs ?? 10_000),
      headers: { 'content-type': 'application/json', 'x-dsync-client': this.clientId },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }).then(async (r) => ({ status: r.status, headers: r.headers,
      body: JSON.parse(await r.text()) as T & ErrorBody }));
  }

  publishRaw(topic: string, body: unknown) {
    return this.send<{ ids: string[] }>('POST', topicPath(topic, 'messages'), body);
  }

  async publish(topic: string, ...messages: Array<Record<string, unknown>>): Promise<string[]> {
    const r = await this.publishRaw(topic, messages.length === 1 ? messages[0]
      : { messages });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.ids;
  }

  receiveRaw(topic: string, body: Record<string, unknown> = {}, timeoutMs?: number) {
    return this.send<{ messages: Received[] }>('POST', topicPath(topic, 'receive'), body,
      timeoutMs);
  }

  async receive(topic: string, body: Record<string, unknown> = {}, timeoutMs?: number):
    Promise<Received[]> {
    const r = await this.receiveRaw(topic, body, timeoutMs);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.messages;
  }

  async ack(topic: string, receipts: string[], group?: string): Promise<number> {
    const r = await this.send<{ acked: number }>('POST', topicPath(topic, 'ack'),
      { receipts, ...(group === undefined ? {} : { group }) });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.acked;
  }

  async nack(topic: string, receipts: string[], delayMs?: number): Promise<number> {
    const r = await this.send<{ nacked: number }>('POST', topicPath(topic, 'nack'),
      { receipts, ...(delayMs === undefined ? {} : { delayMs }) });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.nacked;
  }

  async extend(topic: string, receipts: string[], visibilityMs: number): Promise<number> {
    const r = await this.send<{ extended: number }>('POST', topicPath(topic, 'extend'),
      { receipts, visibilityMs });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.extended;
  }

  async redrive(topic: string, max?: number): Promise<number> {
    const r = await this.send<{ moved: number }>('POST', topicPath(topic, 'redrive'),
      max === undefined ? {} : { max });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.moved;
  }

  topicRaw(topic: string) {
    return get<TopicBody & ErrorBody>(this.base, topicPath(topic));
  }

  async topic(topic: string): Promise<TopicBody> {
    const r = await this.topicRaw(topic);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body;
  }

  configure(topic: string, config: Record<string, unknown>) {
    return this.send<Record<string, unknown>>('PUT', topicPath(topic), config);
  }

  post(path: string, body: unknown) {
    return post<ErrorBody>(this.base, path, body);
  }
}

export function expectError(r: JsonResponse<unknown>, status: number, code: string):
  ErrorBody['error'] {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  const e = (r.body as ErrorBody).error;
  expect(e.code).toBe(code);
  expect(e.message.length).toBeGreaterThan(0);
  return e;
}
