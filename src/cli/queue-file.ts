// `dsync queue publish TOPIC --file F`: a file of one JSON message per line, read as a stream
// (any size in bounded memory) and published in batches, with a progress line on stderr.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { DsyncError, type PublishMessage, type Queues } from '../client/index.js';
import { elapsed, startProgress } from './progress.js';
import { usageError } from './report.js';

/** Default messages per publish request (the API takes up to 1000). */
export const DEFAULT_FILE_BATCH = 100;
/** Default publish requests in flight: 1 keeps the file's order (FIFO per key). */
export const DEFAULT_FILE_IN_FLIGHT = 1;
export const FILE_IN_FLIGHT_MAX = 64;
const MESSAGE_FIELDS = new Set(['body', 'key', 'dedupId', 'delayMs']);

export interface FilePublishOptions {
  readonly file: string;
  /** Each line is a body, not a message object. */
  readonly bodies: boolean;
  /** Defaults for lines without their own. */
  readonly key?: string;
  readonly delayMs?: number;
  readonly batch: number;
  readonly inFlight: number;
}

/** One line as a message; a line that cannot be one is a usage error naming the line. */
export function messageOfLine(line: string, n: number, o: FilePublishOptions): PublishMessage {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw usageError(`${o.file} line ${n} is not JSON: each line must be one JSON ` +
      `${o.bodies ? 'value' : 'message such as {"body": …, "key": "k"}'}`);
  }
  const defaults = {
    ...(o.key === undefined ? {} : { key: o.key }),
    ...(o.delayMs === undefined ? {} : { delayMs: o.delayMs }),
  };
  if (o.bodies) return { body: v, ...defaults };
  const isMessage = typeof v === 'object' && v !== null && !Array.isArray(v) && 'body' in v &&
    Object.keys(v).every((k) => MESSAGE_FIELDS.has(k));
  if (!isMessage) {
    throw usageError(`${o.file} line ${n} is not a message {"body", "key"?, "dedupId"?, ` +
      '"delayMs"?}: pass --bodies when each line is a message body');
  }
  return { ...defaults, ...(v as PublishMessage) };
}

interface Failure { readonly err: unknown; readonly firstLine: number }

/** Publishes the file's lines in order, `batch` per request, `inFlight` requests at once.
 * Stops at the first failure, saying how far it got. */
export async function publishFile(q: Queues, topic: string, o: FilePublishOptions):
  Promise<{ published: number; requests: number }> {
  const input = o.file === '-' ? process.stdin : createReadStream(o.file);
  const lines = createInterface({ input, crlfDelay: Infinity });
  const name = o.file === '-' ? 'stdin' : o.file;
  const t0 = performance.now();
  let published = 0;
  let read = 0;
  const progress = startProgress(() => {
    const ms = performance.now() - t0;
    const rate = ms > 0 ? Math.round((published * 1000) / ms) : 0;
    return `${name}: ${published.toLocaleString('en-US')} published of ` +
      `${read.toLocaleString('en-US')} lines read, ${rate.toLocaleString('en-US')}/s, ` +
      elapsed(ms);
  });
  const inFlight = new Set<Promise<void>>();
  let requests = 0;
  // Set from the publish callbacks: TypeScript cannot see that, hence the casts below.
  let failure = null as Failure | null;
  let chunk: PublishMessage[] = [];
  let chunkFirstLine = 1;
  const send = async (): Promise<void> => {
    if (chunk.length === 0) return;
    const messages = chunk;
    const firstLine = chunkFirstLine;
    chunk = [];
    while (inFlight.size >= o.inFlight) await Promise.race(inFlight);
    if (failure !== null) return;
    const p = q.publishBatch(topic, messages).then(() => {
      published += messages.length;
      requests++;
    }, (err: unknown) => { failure ??= { err, firstLine }; })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  try {
    for await (const line of lines) {
      read++;
      if (line.trim() === '') continue;
      if (chunk.length === 0) chunkFirstLine = read;
      chunk.push(messageOfLine(line, read, o));
      if (chunk.length >= o.batch) await send();
      if (failure !== null) break;
    }
    await send();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && ['ENOENT', 'EACCES', 'EISDIR'].includes(code)) {
      throw usageError(`cannot read ${o.file} (${code}): pass a readable file, or - for stdin`);
    }
    throw err;
  } finally {
    lines.close();
    await Promise.all(inFlight);
    progress.update();
    progress.stop();
  }
  const failed = failure;
  if (failed !== null) {
    const { err, firstLine } = failed;
    if (!(err instanceof DsyncError)) throw err;
    throw new DsyncError(err.code, `${err.message} (published ${published} messages; the ` +
      `batch from line ${firstLine} on was refused${o.inFlight > 1 ? ', and batches sent ' +
      'beside it may be missing too' : ''})`, { status: err.status, details: err.details,
      cause: err });
  }
  return { published, requests };
}
