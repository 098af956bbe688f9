// The `k6` module: check() (feeding the `checks` rate), group(), sleep(), fail().
import { runtime } from '../runtime.js';

export function check<T>(value: T, checks: Record<string, (v: T) => boolean>,
  tags: Record<string, string> = {}): boolean {
  let all = true;
  for (const [name, fn] of Object.entries(checks)) {
    let ok: boolean;
    try {
      ok = fn(value) === true;
    } catch {
      ok = false;
    }
    runtime().add('checks', 'rate', ok ? 1 : 0, { check: name, ...tags });
    all &&= ok;
  }
  return all;
}

export function group<T>(name: string, fn: () => T): T {
  void name;
  return fn();
}

/** Blocks this process (all VUs): the smoke runner's scripts avoid it; k6 blocks one VU. */
export function sleep(seconds: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, seconds * 1000);
}

export function fail(message = 'fail() called'): never {
  throw new Error(message);
}

export default { check, group, sleep, fail };
