/** The longest code (plan, metric, tax, add-on, coupon, alert) the API stores. */
export const MAX_CODE = 255;

/**
 * Whether a code taken from a URL or body can name a stored object at all. When not, a lookup
 * answers "not found" without a query (a NUL byte or a lone surrogate would otherwise reach the
 * database driver, which refuses the one and silently replaces the other).
 */
export const isLookupCode = (code: string) => code.length > 0 && code.length <= MAX_CODE && unstorableText(code) === null;

/**
 * Why a text cannot be stored as sent, or null: PostgreSQL text holds no NUL byte, and a lone
 * surrogate has no UTF-8 form (the driver would store U+FFFD instead).
 */
export const unstorableText = (text: string): "contains_nul_character" | "invalid_unicode" | null =>
  text.includes("\u0000") ? "contains_nul_character" : text.isWellFormed() ? null : "invalid_unicode";

/** PostgreSQL text and jsonb cannot hold U+0000: whether a string, or any string or key inside a value, carries one. */
export function hasNul(x: unknown): boolean {
  if (typeof x === "string") return x.includes("\u0000");
  if (Array.isArray(x)) return x.some(hasNul);
  if (x !== null && typeof x === "object") return Object.entries(x).some(([k, v]) => k.includes("\u0000") || hasNul(v));
  return false;
}
