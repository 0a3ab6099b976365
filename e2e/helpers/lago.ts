// Helpers for driving the server with lago-javascript-client.
import type { HttpResponse } from "lago-javascript-client";

/** The error a Lago client call rejects with: the HTTP response, with the parsed body in `error`. */
export async function lagoError<E = unknown>(promise: Promise<unknown>): Promise<{ status: number; body: E }> {
  try {
    await promise;
  } catch (err) {
    const r = err as HttpResponse<unknown, E>;
    if (typeof r?.status !== "number") throw err;
    return { status: r.status, body: r.error };
  }
  throw new Error("expected the Lago client call to fail");
}
