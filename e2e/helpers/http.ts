// Plain HTTP calls to a server under test (127.0.0.1 only), for what the Lago client does not cover.
export interface HttpAnswer<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface CallOptions {
  apiKey?: string;
  body?: unknown;
  timeoutMs?: number;
}

/** One request; rejects only when no HTTP answer came back (connection refused or reset, timeout). */
export async function call<T = any>(baseUrl: string, method: string, path: string, opts: CallOptions = {}): Promise<HttpAnswer<T>> {
  if (!baseUrl.startsWith("http://127.0.0.1:")) throw new Error(`e2e tests talk to 127.0.0.1 only, not ${baseUrl}`);
  const headers: Record<string, string> = {};
  if (opts.apiKey !== undefined) headers.authorization = `Bearer ${opts.apiKey}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(baseUrl + path, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
  });
  const text = await r.text();
  let body: unknown = text;
  try {
    body = text === "" ? null : JSON.parse(text);
  } catch {
    /* not JSON: keep the text */
  }
  return { status: r.status, body: body as T, headers: r.headers };
}

/** Runs `fn` over `items` with at most `concurrency` calls at a time. */
export async function mapConcurrent<T, R>(items: readonly T[], concurrency: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}
