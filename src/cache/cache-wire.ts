// Checks that a payload from the peer transport is a coherence message before the core sees
// it. Peers present the cluster token, so this guards against bugs and version skew rather
// than attackers: a malformed message is counted and dropped, never thrown on. The core
// checks sizes (key, value) itself.
import type { CoherenceMsg, CoherenceMsgType } from './coherence-messages.js';

type Rec = Record<string, unknown>;

const isInt = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isValue = (v: unknown): boolean => v === null || typeof v === 'string';
const isData = (v: unknown): boolean => v === null ||
  (typeof v === 'object' && isValue((v as Rec).value) && isInt((v as Rec).version));

const FIELD_CHECKS: Readonly<Record<CoherenceMsgType, (m: Rec) => boolean>> = {
  getS: (m) => isInt(m.txn),
  getM: (m) => isInt(m.txn),
  data: (m) => isInt(m.txn) && isInt(m.seq) && isInt(m.version) && isInt(m.leaseMs) &&
    isValue(m.value) && (m.grant === 'M' || m.grant === 'E' || m.grant === 'S'),
  nack: (m) => isInt(m.txn) && typeof m.reason === 'string' &&
    (m.code === 'RESOURCE_EXHAUSTED' || m.code === 'UNAVAILABLE') &&
    (m.cause === undefined || m.cause === 'store_unavailable'),
  inv: (m) => isInt(m.seq),
  fwdGetS: (m) => isInt(m.seq),
  fwdGetM: (m) => isInt(m.seq),
  invAck: (m) => isInt(m.seq) && isData(m.data),
  recallAck: (m) => isInt(m.seq) && isData(m.data) && typeof m.kept === 'boolean',
  putM: (m) => isInt(m.seq) && isInt(m.homeInc) && isInt(m.version) && isValue(m.value) &&
    typeof m.retain === 'boolean',
  putE: (m) => isInt(m.seq) && isInt(m.homeInc),
  putS: (m) => isInt(m.seq) && isInt(m.homeInc),
  putAck: (m) => isInt(m.version),
  hello: () => true,
  helloAck: (m) => typeof m.clear === 'boolean',
};

export function isCoherenceMsg(payload: unknown): payload is CoherenceMsg {
  if (typeof payload !== 'object' || payload === null) return false;
  const m = payload as Rec;
  if (typeof m.type !== 'string' || !Object.hasOwn(FIELD_CHECKS, m.type)) return false;
  if (typeof m.key !== 'string' || !isInt(m.fromInc) || !isInt(m.toInc)) return false;
  return FIELD_CHECKS[m.type as CoherenceMsgType](m);
}
