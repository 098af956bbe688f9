// The queue history checker: a clean history passes, and each report fires on the history
// that shows its anomaly.
import { describe, expect, it } from 'vitest';
import {
  checkQueueHistory, type QueueAckRecord, type QueuePublishRecord, type QueueReceiveRecord,
  type QueueRecord,
} from './queue-history.js';

function pub(at: number, topic: string, tokens: string[], ids: string[] | null,
  opts: { key?: string; outcome?: 'ok' | 'failed' | 'indeterminate'; delayed?: boolean } = {}):
  QueuePublishRecord {
  const outcome = opts.outcome ?? (ids === null ? 'indeterminate' : 'ok');
  return { type: 'publish', topic, sentAt: at, returnedAt: at + 1, outcome,
    messages: tokens.map((token) => ({ token, ...(opts.key === undefined ? {} : { key: opts.key }),
      ...(opts.delayed === true ? { delayed: true } : {}) })),
    ...(ids === null ? {} : { ids }) };
}

function recv(at: number, topic: string, group: string,
  ms: Array<[id: string, token: string, deliveries?: number, key?: string]>):
  QueueReceiveRecord {
  return { type: 'receive', topic, group, sentAt: at, returnedAt: at + 1,
    messages: ms.map(([id, token, deliveries, key]) => ({ id, token, deliveries: deliveries ?? 1,
      ...(key === undefined ? {} : { key }) })) };
}

function ack(at: number, topic: string, group: string, ids: string[], acked: number):
  QueueAckRecord {
  return { type: 'ack', topic, group, ids, outcome: 'ok', acked, sentAt: at, returnedAt: at + 1 };
}

const G = { groups: ['g'] };

describe('queue history checker', () => {
  it('passes a clean history and counts what it saw', () => {
    const h: QueueRecord[] = [
      pub(0, 't', ['a', 'b'], ['1', '2'], { key: 'k' }),
      pub(10, 't', ['c'], null),
      recv(20, 't', 'g', [['1', 'a'], ['2', 'b']]),
      ack(30, 't', 'g', ['1', '2'], 2),
    ];
    const r = checkQueueHistory(h, G);
    expect(r).toMatchObject({ ok: true, acknowledged: 2, indeterminate: 1, delivered: 2,
      lost: [], duplicates: { count: 0, ids: [] } });
  });

  it('reports a 201-acknowledged message that was never delivered as lost', () => {
    const h = [pub(0, 't', ['a', 'b'], ['1', '2']), recv(5, 't', 'g', [['1', 'a']])];
    const r = checkQueueHistory(h, { groups: ['g', 'h'] });
    expect(r.ok).toBe(false);
    expect(r.lost).toEqual([{ topic: 't', group: 'h', id: '1', token: 'a' },
      { topic: 't', group: 'g', id: '2', token: 'b' }, { topic: 't', group: 'h', id: '2',
        token: 'b' }]);
  });

  it('an indeterminate publish may or may not be delivered; a failed one must not be', () => {
    const h = [pub(0, 't', ['a'], null), pub(1, 't', ['b'], null, { outcome: 'failed' }),
      recv(5, 't', 'g', [['1', 'a'], ['2', 'b']])];
    const r = checkQueueHistory(h, G);
    expect(r.lost).toEqual([]);
    expect(r.failedButDelivered).toEqual([{ topic: 't', group: 'g', id: '2', token: 'b' }]);
    expect(r.ok).toBe(false);
  });

  it('reports deliveries of messages never published, and ids that do not match', () => {
    const h = [pub(0, 't', ['a', 'b'], ['1', '2']),
      recv(5, 't', 'g', [['1', 'a'], ['9', 'zzz'], ['3', 'b']])];
    const r = checkQueueHistory(h, G);
    expect(r.unknown).toEqual([{ topic: 't', group: 'g', id: '9', token: 'zzz' }]);
    expect(r.idMismatch).toEqual(['b was published as 2 and delivered as 3']);
    const reuse = checkQueueHistory([pub(0, 't', ['a'], ['1']), pub(0, 't', ['b'], null),
      recv(5, 't', 'g', [['1', 'a'], ['1', 'b']])], G);
    expect(reuse.idMismatch).toEqual(['id 1 of t delivered for a and b']);
  });

  it('counts duplicates apart (at-least-once allows them)', () => {
    const h = [pub(0, 't', ['a', 'b'], ['1', '2']), recv(5, 't', 'g', [['1', 'a'], ['2', 'b']]),
      recv(50, 't', 'g', [['1', 'a', 2]]), recv(90, 't', 'g', [['1', 'a', 3]])];
    const r = checkQueueHistory(h, G);
    expect(r.ok).toBe(true);
    expect(r.duplicates).toEqual({ count: 2, ids: ['1'] });
  });

  it('reports a delivery after an ack that counted every receipt', () => {
    const h = [pub(0, 't', ['a', 'b'], ['1', '2']), recv(5, 't', 'g', [['1', 'a'], ['2', 'b']]),
      ack(10, 't', 'g', ['1'], 1), ack(10, 't', 'g', ['2'], 0),
      recv(20, 't', 'g', [['1', 'a', 2], ['2', 'b', 2]])];
    const r = checkQueueHistory(h, G);
    expect(r.redeliveredAfterAck).toEqual([{ topic: 't', group: 'g', id: '1', token: 'a' }]);
  });

  it('reports first deliveries out of publish order per key, across and within requests',
    () => {
      // a before b (sequential publishes), b first delivered in an earlier receive.
      const across = [pub(0, 't', ['a'], ['1'], { key: 'k' }), pub(5, 't', ['b'], ['2'],
        { key: 'k' }), recv(10, 't', 'g', [['2', 'b']]), recv(20, 't', 'g', [['1', 'a']])];
      const r1 = checkQueueHistory(across, G);
      expect(r1.fifo).toHaveLength(1);
      expect(r1.fifo[0]).toMatchObject({ key: 'k', first: 'a', second: 'b' });
      // One batch, one answer, in the wrong order.
      const within = [pub(0, 't', ['a', 'b'], ['1', '2'], { key: 'k' }),
        recv(10, 't', 'g', [['2', 'b'], ['1', 'a']])];
      expect(checkQueueHistory(within, G).fifo).toHaveLength(1);
      // Keys are separate sequences; keyless messages are one.
      const keys = [pub(0, 't', ['a'], ['1'], { key: 'k1' }), pub(5, 't', ['b'], ['2'],
        { key: 'k2' }), recv(10, 't', 'g', [['2', 'b'], ['1', 'a']])];
      expect(checkQueueHistory(keys, G).fifo).toEqual([]);
      const keyless = [pub(0, 't', ['a'], ['1']), pub(5, 't', ['b'], ['2']),
        recv(10, 't', 'g', [['2', 'b'], ['1', 'a']])];
      expect(checkQueueHistory(keyless, G).fifo).toHaveLength(1);
    });

  it('does not call overlapping requests, redeliveries or delayed messages out of order', () => {
    // Concurrent publishes: no order between them.
    const concurrent: QueueRecord[] = [
      { ...pub(0, 't', ['a'], ['1'], { key: 'k' }), returnedAt: 10 },
      pub(5, 't', ['b'], ['2'], { key: 'k' }),
      recv(20, 't', 'g', [['2', 'b'], ['1', 'a']])];
    expect(checkQueueHistory(concurrent, G).fifo).toEqual([]);
    // The first delivery of a was in an answer that was lost: deliveries 2 is not a first.
    const lostAnswer = [pub(0, 't', ['a'], ['1'], { key: 'k' }), pub(5, 't', ['b'], ['2'],
      { key: 'k' }), recv(10, 't', 'g', [['2', 'b']]), recv(20, 't', 'g', [['1', 'a', 2]])];
    expect(checkQueueHistory(lostAnswer, G).fifo).toEqual([]);
    const delayed = [pub(0, 't', ['a'], ['1'], { key: 'k', delayed: true }),
      pub(5, 't', ['b'], ['2'], { key: 'k' }), recv(10, 't', 'g', [['2', 'b'], ['1', 'a']])];
    expect(checkQueueHistory(delayed, G).fifo).toEqual([]);
  });

  it('scales to long single-key histories', () => {
    const h: QueueRecord[] = [];
    const n = 20_000;
    for (let i = 0; i < n; i++) h.push(pub(i * 3, 't', [`m${i}`], [`${i + 1}`], { key: 'k' }));
    for (let i = 0; i < n; i += 100) {
      h.push(recv(n * 3 + i, 't', 'g', Array.from({ length: 100 },
        (_, j): [string, string] => [`${i + j + 1}`, `m${i + j}`])));
    }
    const r = checkQueueHistory(h, G);
    expect(r.ok).toBe(true);
    expect(r.delivered).toBe(n);
  });
});
