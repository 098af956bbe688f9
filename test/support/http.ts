// Small JSON-over-HTTP helpers for black-box tests.

export interface JsonResponse<T = Record<string, unknown>> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

export async function call<T = Record<string, unknown>>(
  base: string, method: string, path: string, body?: unknown, timeoutMs = 10_000,
): Promise<JsonResponse<T>> {
  const r = await fetch(base + path, {
    method, signal: AbortSignal.timeout(timeoutMs),
    ...(body === undefined ? {} : {
      body: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    }),
  });
  const text = await r.text();
  let parsed: unknown = text;
  try { parsed = JSON.parse(text); } catch { /* not JSON: keep the text */ }
  return { status: r.status, body: parsed as T, headers: r.headers };
}

export const post = <T = Record<string, unknown>>(base: string, path: string, body?: unknown,
  timeoutMs?: number): Promise<JsonResponse<T>> => call<T>(base, 'POST', path, body ?? {}, timeoutMs);
export const get = <T = Record<string, unknown>>(base: string, path: string):
  Promise<JsonResponse<T>> => call<T>(base, 'GET', path);
