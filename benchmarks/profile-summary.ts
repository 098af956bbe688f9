// Where a node's CPU went: reads V8 CPU profiles (`.cpuprofile`, as DSYNC_BENCH_CPU_PROF_DIR
// of benchmarks/locks.ts and benchmarks/cache.ts writes them) and sums each sample's self
// time into the stages of a request (HTTP parsing, Koa, routing, validation, logging,
// metrics, JSON, Raft, storage, transport, ...), by the file and function it was taken in.
// With `--ops N` (requests or cycles the node served during the profile) it prints µs per
// operation, which is what docs/benchmarks.md quotes.
// Run: npx tsx benchmarks/profile-summary.ts [--ops N] [--top K] file.cpuprofile...
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { assert } from '../src/assert.js';

interface CallFrame {
  functionName: string;
  url: string;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A stage and what a sample's file or function must contain to count for it; first match
 * wins, so specific rules come before general ones. */
const STAGES: readonly (readonly [string, RegExp])[] = [
  ['idle', /^\(idle\)$/],
  ['gc', /^\(garbage collector\)$/],
  ['profiler/program', /^\((program|root)\)$|node:inspector|cpu-profile-hook/],
  ['logging (pino)', /node_modules\/(pino|sonic-boom|thread-stream)/],
  ['metrics (prom-client)', /node_modules\/prom-client|observability\/metrics|raft-observer|lock-metrics/],
  ['validation (zod, checks)', /node_modules\/zod|http\/validate|lock-routes|compiled-body/],
  ['routing (@koa/router)', /node_modules\/(@koa\/router|path-to-regexp)/],
  ['koa + middleware', /node_modules\/(koa|koa-compose|delegates|on-finished|ee-first|statuses|content-type|mime|type-is|accepts|cookies|vary|encodeurl|escape-html|http-errors|depd|debug|destroy|fresh|only)|src\/http\/(app|envelope|body|server)/],
  ['forwarding', /http\/forward|peer-forward|node_modules\/undici/],
  ['http parse (node)', /_http_server|_http_incoming|_http_common|HTTPParser|parserOn/],
  ['http response + socket write', /_http_outgoing|stream_base_commons|node:net$|writev|internal\/streams\/writable/],
  ['msgpack', /node_modules\/msgpackr/],
  ['transport', /src\/transport\//],
  ['raft core', /src\/raft\//],
  ['runtime (raft-group, dedup, envelope)', /src\/runtime\//],
  ['storage (WAL, fsync)', /src\/storage\/|fs\/promises|node:fs|crc32|node-rs/],
  ['lock service + table', /src\/lock\//],
  ['cache', /src\/cache\//],
  ['queue', /src\/queue\//],
  ['streams, events, timers, buffers (node)', /node:(events|buffer|internal\/(streams|buffer|timers|process|async_hooks|event_target|abort|perf|url|querystring|util|validators|errors|crypto|per_context))|node:timers|node:url|node:querystring/],
];

export interface StageTime {
  stage: string;
  selfMs: number;
}

export function stageOf(frame: CallFrame): string {
  const key = `${frame.url} ${frame.functionName}`;
  const url = frame.url;
  for (const [stage, re] of STAGES) {
    if (re.test(url) || re.test(frame.functionName)) return stage;
  }
  // V8 builtins (JSON.parse, JSON.stringify, RegExp exec...) run under their own name with no
  // file; user code with no file is eval'd.
  if (url === '') return /JSON|parse|stringify/.test(key) ? 'json (V8)' : 'V8 builtins, other';
  return 'other';
}

/** Self time per profile node id, in ms, from the samples and their time deltas. */
function selfTimes(p: CpuProfile): Map<number, number> {
  const out = new Map<number, number>();
  assert(p.samples.length === p.timeDeltas.length, 'one time delta per sample');
  // timeDeltas[i] is the time before sample i: attribute it to sample i-1's node, as DevTools.
  for (let i = 1; i < p.samples.length; i++) {
    const id = p.samples[i - 1];
    const dt = p.timeDeltas[i];
    if (id === undefined || dt === undefined) continue;
    out.set(id, (out.get(id) ?? 0) + dt / 1000);
  }
  return out;
}

export interface ProfileSummary {
  wallMs: number;
  stages: StageTime[];
  top: { fn: string; selfMs: number }[];
}

export function summarize(p: CpuProfile, topK: number): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const stages = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const [id, ms] of selfTimes(p)) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const stage = stageOf(node.callFrame);
    stages.set(stage, (stages.get(stage) ?? 0) + ms);
    const file = node.callFrame.url.replace(/^.*\/(node_modules|dist)\//, '').replace(/^file:\/\//, '');
    const fn = `${node.callFrame.functionName || '(anonymous)'} ${file}`;
    fns.set(fn, (fns.get(fn) ?? 0) + ms);
  }
  return {
    wallMs: (p.endTime - p.startTime) / 1000,
    stages: [...stages].map(([stage, selfMs]) => ({ stage, selfMs }))
      .sort((a, b) => b.selfMs - a.selfMs),
    top: [...fns].map(([fn, selfMs]) => ({ fn, selfMs }))
      .sort((a, b) => b.selfMs - a.selfMs).slice(0, topK),
  };
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true,
    options: { ops: { type: 'string' }, top: { type: 'string', default: '25' } } });
  const ops = values.ops === undefined ? null : Number(values.ops);
  assert(ops === null || (Number.isFinite(ops) && ops > 0), '--ops must be a positive number');
  const topK = Number(values.top);
  assert(positionals.length > 0, 'usage: profile-summary.ts [--ops N] [--top K] file...');
  for (const file of positionals) {
    const s = summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, topK);
    const busy = s.stages.filter((x) => x.stage !== 'idle')
      .reduce((sum, x) => sum + x.selfMs, 0);
    process.stdout.write(`\n### ${file}: ${s.wallMs.toFixed(0)} ms profiled, ` +
      `${busy.toFixed(0)} ms busy (${(100 * busy / s.wallMs).toFixed(0)} %)\n\n`);
    process.stdout.write(`| stage | self ms | share of busy |${ops === null ? '' : ' µs/op |'}\n`);
    process.stdout.write(`|---|---:|---:|${ops === null ? '' : '---:|'}\n`);
    for (const x of s.stages) {
      const share = x.stage === 'idle' ? '—' : `${(100 * x.selfMs / busy).toFixed(1)} %`;
      const perOp = ops === null ? '' : ` ${(1000 * x.selfMs / ops).toFixed(1)} |`;
      process.stdout.write(`| ${x.stage} | ${x.selfMs.toFixed(0)} | ${share} |${perOp}\n`);
    }
    if (ops !== null) {
      process.stdout.write(`| **busy, per op** | | | **${(1000 * busy / ops).toFixed(1)}** |\n`);
    }
    process.stdout.write('\nTop functions by self time:\n\n');
    for (const f of s.top) process.stdout.write(`- ${f.selfMs.toFixed(0)} ms ${f.fn}\n`);
  }
}

if (process.argv[1]?.endsWith('profile-summary.ts') === true) main();
