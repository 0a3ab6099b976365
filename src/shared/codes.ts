/** The longest code (plan, metric, tax, add-on, coupon, alert) the API stores. */
export const MAX_CODE = 255;

/**
 * Whether a code taken from a URL or body can name a stored object at all. When not, a lookup
 * answers "not found" without a query (a NUL byte or a lone surrogate would otherwise reach the
 * database driver, which refuses the one and silently replaces the other).
 */
export const isLookupCode = (code: string) => code.length > 0 && code.length <= MAX_CODE && !code.includes("\u0000") && code.isWellFormed();

/**
 * Why a text cannot be stored as sent, or null: PostgreSQL text holds no NUL byte, and a lone
 * surrogate has no UTF-8 form (the driver would store U+FFFD instead).
 */
export const unstorableText = (text: string): "contains_nul_character" | "invalid_unicode" | null =>
  text.includes("\u0000") ? "contains_nul_character" : text.isWellFormed() ? null : "invalid_unicode";
