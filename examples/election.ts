// Leader election with the dsync SDK: two candidates, the first leads, resigns, and the
// second takes over with a higher term (the fencing token). observe() reports each change.
// Run: DSYNC_ENDPOINTS=http://127.0.0.1:8000 npx tsx examples/election.ts
import { DsyncClient, type Leader } from '../src/client/index.js';

const endpoints = (process.env.DSYNC_ENDPOINTS ?? 'http://127.0.0.1:8000').split(',');
const client = new DsyncClient({ endpoints });
const election = client.election('examples/scheduler');

const stop = new AbortController();
const seen: Array<string | null> = [];
const watching = (async () => {
  for await (const leader of election.observe({ signal: stop.signal, intervalMs: 100 })) {
    seen.push(leader?.value ?? null);
  }
})();

const a = await election.campaign('node-a', { ttlMs: 5000 });
console.log(`node-a leads, term ${a.term}`);
const waiting: Array<Leader | null> = [];
const bPromise = election.campaign('node-b', { ttlMs: 5000,
  onWaiting: (l) => waiting.push(l) });
// Let node-b queue up and the observer see node-a (it polls), then hand over.
while (!waiting.some((l) => l?.value === 'node-a') || !seen.includes('node-a')) {
  await new Promise((r) => setTimeout(r, 20));
}
await a.resign();
const b = await bPromise;
console.log(`node-b leads, term ${b.term} > ${a.term}: ${b.term > a.term}`);
// observe() polls: a leadership shorter than its interval can pass unseen.
while (!seen.includes('node-b')) await new Promise((r) => setTimeout(r, 20));
await b.resign();

stop.abort();
await watching;
console.log('observed leaders:', seen.join(' → '));
await client.close();
