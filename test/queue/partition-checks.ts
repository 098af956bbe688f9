// Checks of a queue partition's behaviour, command by command, shared by the property tests
// and the Raft simulation. Specific rules are checked first, from the results alone, so that a
// broken rule is reported by name; then the partition is compared with the naive model.
//
// - deliveries: no delivery exceeds the topic's maxDeliveries;
// - fifo: per (topic, group, key), first deliveries of messages published without a delay
//   come in publish order (ids increase); DLQs and messages that passed through one are
//   exempt (their order is dead-letter order, a redrive's is the DLQ's);
// - lost: every message the model holds for a group (fresh, in flight, ready, delayed,
//   parked) is held by the partition for that group, so no committed publish disappears;
// - double: a message a group dead-lettered is not also still held by that group;
// - model: results, events, per-message states and deadlines equal the model's.
import {
  dlqTopicOf, isDlqTopic, topicOfDlq, type QueueCommand,
} from '../../src/queue/partition-commands.js';
import type { ApplyOutput, QueuePartition } from '../../src/queue/partition.js';
import type { PartitionLimits } from '../../src/queue/partition-limits.js';
import { SimViolation } from '../sim/checker.js';
import { PartitionModel } from './partition-model.js';

export type QueueCheckKind = 'deliveries' | 'fifo' | 'lost' | 'double' | 'model';

export class QueueCheckError extends SimViolation {
  constructor(readonly kind: QueueCheckKind, message: string) {
    super(`queue check ${kind}: ${message}`);
    this.name = 'QueueCheckError';
  }
}

function fail(kind: QueueCheckKind, message: string): never {
  throw new QueueCheckError(kind, message);
}

function show(x: unknown): string {
  return JSON.stringify(x, (_k, v: unknown) =>
    v instanceof Uint8Array ? `bytes:${Buffer.from(v).toString('hex')}` : v);
}

export class PartitionChecker {
  readonly model: PartitionModel;
  /** Ids exempt from the FIFO check, per topic: published with a delay (their place is their
   * release time), or seen in the topic's DLQ. */
  private readonly exempt = new Map<string, Set<string>>();
  /** Per (topic, group): ids delivered at least once; per (topic, group, key): the last id
   * first-delivered. */
  private readonly delivered = new Map<string, Set<string>>();
  private readonly lastFirst = new Map<string, number>();
  readonly tally: Record<string, number> = {};
  private deadSeen = 0;

  /** With `rulesOnly` the partition is not compared with the model (lost and model are
   * off): the checks that black-box tests can make, shown to fire on their own. */
  constructor(limits: Partial<PartitionLimits>, salt = 0, private readonly rulesOnly = false) {
    this.model = new PartitionModel(limits, salt);
  }

  /** Checks one applied command: `out` is what the partition answered. */
  observe(cmd: QueueCommand, nowMs: number, out: ApplyOutput, p: QueuePartition): void {
    this.count(cmd, out);
    if (cmd.type === 'publish' && out.result.type === 'published') this.notePublish(cmd, out);
    const expected = this.model.apply(cmd, nowMs);
    let dead = 0;
    for (const topic of this.model.topics.keys()) {
      const base = topicOfDlq(topic);
      if (base === null) continue;
      const ids = this.model.logIds(topic).log;
      for (const id of ids) this.exemptId(base, id);
      dead += ids.length;
    }
    if (dead > this.deadSeen) this.bump('deadLettered');
    this.deadSeen = dead;
    // The model's config, not the partition's: a partition that stores a wrong bound and
    // answers the right one must not escape.
    if (out.result.type === 'received') this.checkDeliveries(cmd, out);
    this.checkHeld(p, out, expected);
  }

  private count(cmd: QueueCommand, out: ApplyOutput): void {
    const r = out.result;
    const k = r.type === 'received' ? (r.messages.length > 0 ? 'received' : 'receivedNone') :
      r.type === 'exhausted' ? `exhausted:${r.limit}` : r.type;
    this.tally[k] = (this.tally[k] ?? 0) + 1;
    if (r.type === 'received') {
      for (const m of r.messages) if (m.deliveries > 1) this.bump('redelivered');
    }
    if (r.type === 'acked' && r.acked > 0) this.bump('ackedSome');
    if (r.type === 'redriven' && r.moved > 0) this.bump('redrivenSome');
    if (cmd.type === 'publish' && r.type === 'published' && r.dedupHits > 0) this.bump('dedup');
  }

  bump(k: string): void {
    this.tally[k] = (this.tally[k] ?? 0) + 1;
  }

  private notePublish(cmd: QueueCommand & { type: 'publish' }, out: ApplyOutput): void {
    if (out.result.type !== 'published') return;
    const ids = out.result.ids;
    cmd.messages.forEach((m, i) => {
      const id = ids[i];
      if ((m.delayMs ?? 0) > 0 && id !== undefined) this.exemptId(cmd.topic, id);
    });
  }

  private exemptId(topic: string, id: string): void {
    const set = this.exempt.get(topic) ?? new Set<string>();
    set.add(id);
    this.exempt.set(topic, set);
  }

  private checkDeliveries(cmd: QueueCommand, out: ApplyOutput): void {
    if (cmd.type !== 'receive' || out.result.type !== 'received') return;
    const max = this.model.configOf(cmd.topic)?.maxDeliveries ?? 0;
    const gk = `${cmd.topic}\u0000${cmd.group}`;
    const seen = this.delivered.get(gk) ?? new Set<string>();
    this.delivered.set(gk, seen);
    for (const m of out.result.messages) {
      if (m.deliveries > max) {
        fail('deliveries', `${cmd.topic}/${cmd.group} got ${m.id} for delivery ` +
          `${m.deliveries} with maxDeliveries ${max}`);
      }
      const first = !seen.has(m.id);
      seen.add(m.id);
      if (!first || isDlqTopic(cmd.topic) || this.exempt.get(cmd.topic)?.has(m.id) === true) {
        continue;
      }
      const kk = `${gk}\u0000${m.key ?? ''}`;
      const id = Number(m.id);
      const last = this.lastFirst.get(kk) ?? 0;
      if (id <= last) {
        fail('fifo', `${cmd.topic}/${cmd.group} key ${m.key ?? '(none)'}: first delivery of ` +
          `${m.id} after ${last}`);
      }
      this.lastFirst.set(kk, id);
    }
  }

  /** double: from the partition alone. */
  private checkDouble(p: QueuePartition): void {
    for (const topic of p.topicNames()) {
      if (isDlqTopic(topic)) continue;
      const log = p.log(dlqTopicOf(topic));
      for (const group of p.groupNames(topic)) {
        const dead = new Set(log.filter((e) => e.origin === group).map((e) => e.id));
        const both = p.groupMessages(topic, group).find((m) => dead.has(m.id));
        if (both !== undefined) {
          fail('double', `${topic}/${group} holds ${both.id} (${both.state}) that it ` +
            'dead-lettered');
        }
      }
    }
  }

  /** double, then lost and the model's results and per-message states. */
  private checkHeld(p: QueuePartition, out: ApplyOutput, expected: ApplyOutput): void {
    this.checkDouble(p);
    if (this.rulesOnly) return;
    const topics = [...this.model.topics.keys()].sort();
    const views = topics.map((topic) => ({ topic, log: p.log(topic), want: this.model.logIds(topic),
      groups: this.model.groupNames(topic).map((group) => ({ group,
        got: p.groupMessages(topic, group), want: this.model.groupMessages(topic, group) })) }));
    for (const v of views) {
      const have = new Set(v.log.map((e) => e.id));
      const missing = v.want.log.find((id) => !have.has(id));
      if (missing !== undefined) fail('lost', `${v.topic} should retain ${missing} but does not`);
      for (const g of v.groups) {
        const held = new Set(g.got.map((m) => `${m.id}@${m.pos}`));
        for (const m of g.want) {
          if (held.has(`${m.id}@${m.pos}`)) continue;
          fail('lost', `${v.topic}/${g.group} should hold message ${m.id} (at ${m.pos}, ` +
            `${m.state}) but does not`);
        }
      }
    }
    if (show(expected) !== show(out)) {
      fail('model', `answered ${show(out)}, the model ${show(expected)}`);
    }
    this.checkStates(p, topics, views);
  }

  private checkStates(p: QueuePartition, topics: readonly string[], views: ReadonlyArray<{
    topic: string; log: readonly { id: string }[]; want: { log: string[] };
    groups: ReadonlyArray<{ group: string; got: unknown[]; want: unknown[] }> }>): void {
    if (show(p.topicNames()) !== show(topics)) {
      fail('model', `topics ${show(p.topicNames())}, the model's ${show(topics)}`);
    }
    for (const v of views) {
      const groups = v.groups.map((g) => g.group);
      if (show(p.groupNames(v.topic)) !== show(groups)) {
        fail('model', `${v.topic} groups ${show(p.groupNames(v.topic))}, the model's ` +
          show(groups));
      }
      const ids = v.log.map((e) => e.id);
      if (show(ids) !== show(v.want.log)) {
        fail('model', `${v.topic} log ${show(ids)}, the model's ${show(v.want.log)}`);
      }
      for (const g of v.groups) {
        for (const kind of new Set(g.want.map((m) => (m as { state: string }).state))) {
          this.bump(`state:${kind}`);
        }
        if (show(g.got) !== show(g.want)) {
          fail('model', `${v.topic}/${g.group} holds ${show(g.got)}, the model ${show(g.want)}`);
        }
      }
    }
    if (p.nextDeadline() !== this.model.nextDeadline()) {
      fail('model', `next deadline ${p.nextDeadline()}, the model's ${this.model.nextDeadline()}`);
    }
  }
}
