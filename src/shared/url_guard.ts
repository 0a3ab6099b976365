// A NUL byte (`%00`) in a path parameter or a query value can name nothing stored (PostgreSQL text
// cannot hold one; sent as a query parameter it fails the statement). One check for every route:
// a path parameter answers the 404 of the object it names, a query value a 422 naming the key.
import { hasNul } from "./codes.ts";
import { type AppError, notFound, validationFailed } from "./errors.ts";

/** `customers` → `customer`, `taxes` → `tax`: the object a collection's path parameter names. */
export function kindOf(collection: string): string {
  if (collection.endsWith("xes")) return collection.slice(0, -2);
  if (collection.endsWith("s")) return collection.slice(0, -1);
  return collection;
}

/**
 * The error for a request whose path parameters or query hold a NUL byte, or null. `route` is the
 * matched route's pattern (`/api/v1/customers/:external_customer_id/invoices`).
 */
export function nulInRequest(route: string, params: Record<string, unknown>, query: Record<string, unknown>): AppError | null {
  const segments = route.split("/");
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (!seg.startsWith(":")) continue;
    if (hasNul(params[seg.slice(1)])) return notFound(kindOf(segments[i - 1] ?? "resource"));
  }
  const keys = Object.keys(query).filter((k) => k.includes("\u0000") || hasNul(query[k]));
  if (keys.length === 0) return null;
  return validationFailed(Object.fromEntries(keys.map((k) => [k.replaceAll("\u0000", "\\u0000"), ["contains_nul_character"]])), "invalid query parameters");
}

