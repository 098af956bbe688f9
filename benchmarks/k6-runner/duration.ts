// k6 durations: `500ms`, `30s`, `1m30s`, `2h`.

export function durationMs(d: string | undefined, fallback: number): number {
  if (d === undefined) return fallback;
  let total = 0;
  let seen = '';
  for (const m of d.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms'];
    seen += m[0];
  }
  if (seen !== d || d === '') throw new Error(`duration ${d}: use e.g. 30s, 1m30s or 500ms`);
  return total;
}
