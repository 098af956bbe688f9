// One readable line per message or Ready, for logs, traces and golden tests.

import type { Message, Ready } from './types.js';

export function describeMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'prevote':
    case 'vote': {
      const tr = m.type === 'vote' && m.transfer ? ' transfer' : '';
      return `${head} last=${m.lastIndex}@${m.lastTerm}${tr}`;
    }
    case 'prevoteResp':
    case 'voteResp':
      return `${head} ${m.granted ? 'granted' : 'rejected'}`;
    case 'append': {
      const ents = m.entries.length === 0 ? '' :
        ` ents=[${m.entries[0]?.index}..${m.entries[m.entries.length - 1]?.index}]`;
      return `${head} prev=${m.prevIndex}@${m.prevTerm} commit=${m.commit}${ents}`;
    }
    case 'appendResp':
      return m.success ? `${head} ok index=${m.index}` :
        `${head} reject index=${m.index} hint=${m.rejectHint}`;
    case 'heartbeat':
      return `${head} commit=${m.commit} read=${m.readCtx}`;
    case 'heartbeatResp':
      return `${head} read=${m.readCtx}`;
    case 'snapshot':
      return `${head} snap=${m.meta.index}@${m.meta.term} off=${m.offset}` +
        ` len=${m.chunk.length}/${m.totalBytes}${m.done ? ' done' : ''}`;
    case 'snapshotResp':
      return `${head} snap=${m.index} next=${m.nextOffset}`;
    case 'timeoutNow':
      return head;
  }
}

export function describeReady(r: Ready): string {
  const parts: string[] = [];
  if (r.softState) parts.push(`soft=${r.softState.role}/${r.softState.leader ?? '-'}`);
  if (r.hardState) {
    const h = r.hardState;
    parts.push(`hard=t${h.term}/v${h.vote ?? '-'}/c${h.commit}`);
  }
  if (r.snapshot) parts.push(`snap=${r.snapshot.meta.index}@${r.snapshot.meta.term}`);
  if (r.entries.length > 0) {
    parts.push(`ents=${r.entries[0]?.index}..${r.entries[r.entries.length - 1]?.index}`);
  }
  if (r.committed.length > 0) {
    parts.push(`apply=${r.committed[0]?.index}..${r.committed[r.committed.length - 1]?.index}`);
  }
  if (r.earlyMessages.length > 0) parts.push(`early=${r.earlyMessages.length}`);
  if (r.messages.length > 0) parts.push(`msgs=${r.messages.length}`);
  if (r.readStates.length > 0) parts.push(`reads=${r.readStates.length}`);
  if (r.dropped.length > 0) parts.push(`dropped=${r.dropped.length}`);
  return parts.join(' ');
}
