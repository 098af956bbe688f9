// Cluster membership: single-server changes (dissertation §4.1) and their wire encoding.
// A config takes effect as soon as its entry is in the log, so it is a fold of the log.

import { assert } from '../assert.js';
import { InvalidArgumentError } from '../errors.js';
import type { ClusterConfig, ConfChange, NodeId } from './types.js';

/** Longest node id accepted in a ConfChange (ids travel in every message). */
export const NODE_ID_MAX_LENGTH = 256;

export function isVoter(cfg: ClusterConfig, id: NodeId): boolean {
  return cfg.voters.includes(id);
}

export function isLearner(cfg: ClusterConfig, id: NodeId): boolean {
  return cfg.learners.includes(id);
}

export function members(cfg: ClusterConfig): NodeId[] {
  return [...cfg.voters, ...cfg.learners];
}

/** Why `cc` cannot be applied to `cfg`, or null if it can. */
export function confChangeError(cfg: ClusterConfig, cc: ConfChange): string | null {
  const { node } = cc;
  if (node.length === 0 || node.length > NODE_ID_MAX_LENGTH) return 'bad node id';
  switch (cc.type) {
    case 'addLearner':
      return isVoter(cfg, node) || isLearner(cfg, node) ? `${node} is already a member` : null;
    case 'promote':
      return isLearner(cfg, node) ? null : `${node} is not a learner`;
    case 'remove':
      if (!isVoter(cfg, node) && !isLearner(cfg, node)) return `${node} is not a member`;
      if (isVoter(cfg, node) && cfg.voters.length === 1) return 'cannot remove the last voter';
      return null;
  }
}

export function applyConfChange(cfg: ClusterConfig, cc: ConfChange): ClusterConfig {
  const err = confChangeError(cfg, cc);
  assert(err === null, () => `invalid conf change in log: ${err}`);
  const without = (xs: readonly NodeId[]): NodeId[] => xs.filter((x) => x !== cc.node);
  let out: ClusterConfig;
  switch (cc.type) {
    case 'addLearner': out = { voters: [...cfg.voters], learners: [...cfg.learners, cc.node] };
      break;
    case 'promote': out = { voters: [...cfg.voters, cc.node], learners: without(cfg.learners) };
      break;
    case 'remove': out = { voters: without(cfg.voters), learners: without(cfg.learners) };
      break;
  }
  assert(out.voters.length > 0, 'a config keeps at least one voter');
  return out;
}

export function validateConfig(cfg: ClusterConfig, field: string): void {
  const all = members(cfg);
  if (new Set(all).size !== all.length) {
    throw new InvalidArgumentError(field, `${field} lists a node twice`);
  }
  for (const id of all) {
    if (id.length === 0 || id.length > NODE_ID_MAX_LENGTH) {
      throw new InvalidArgumentError(field, `${field} has an empty or too long node id`);
    }
  }
}

export function configsEqual(a: ClusterConfig, b: ClusterConfig): boolean {
  const same = (x: readonly NodeId[], y: readonly NodeId[]): boolean =>
    x.length === y.length && [...x].sort().join('\0') === [...y].sort().join('\0');
  return same(a.voters, b.voters) && same(a.learners, b.learners);
}

const CC_TAGS: Record<ConfChange['type'], number> = { addLearner: 1, promote: 2, remove: 3 };

/** ConfChange -> bytes: one tag byte then the UTF-8 node id. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const id = new TextEncoder().encode(cc.node);
  assert(id.length > 0, 'conf change needs a node');
  const out = new Uint8Array(1 + id.length);
  out[0] = CC_TAGS[cc.type];
  out.set(id, 1);
  return out;
}

/** Bytes -> ConfChange; throws InvalidArgumentError on malformed input. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const tag = data[0];
  const node = new TextDecoder('utf-8', { fatal: false }).decode(data.subarray(1));
  if (node.length === 0) throw new InvalidArgumentError('confChange', 'conf change has no node');
  switch (tag) {
    case 1: return { type: 'addLearner', node };
    case 2: return { type: 'promote', node };
    case 3: return { type: 'remove', node };
    default: throw new InvalidArgumentError('confChange', `unknown conf change tag ${tag}`);
  }
}
