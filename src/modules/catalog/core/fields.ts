// Reading untrusted JSON bodies field by field, recording every broken field (with Lago's error
// codes) instead of stopping at the first.
import type { FieldErrors } from "../../../shared/errors.ts";

export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errors: FieldErrors };

export const isRecord = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);

// Lago's codes for ActiveRecord validations: presence, inclusion/format, numericality, uniqueness.
export const MANDATORY = "value_is_mandatory";
export const INVALID = "value_is_invalid";
export const OUT_OF_RANGE = "value_is_out_of_range";
export const TAKEN = "value_already_exist";
/** A string holding an unpaired surrogate: it has no UTF-8 form (jsonb refuses it, text would store U+FFFD). */
export const UNPAIRED_SURROGATE = "invalid_unicode";

const MAX_TEXT = 255;
const MAX_DESCRIPTION = 10_000;

export class ErrorSink {
  readonly details: FieldErrors = {};

  add(field: string, code: string): void {
    const list = (this.details[field] ??= []);
    if (!list.includes(code)) list.push(code);
  }

  get empty(): boolean {
    return Object.keys(this.details).length === 0;
  }

  result<T>(value: T): Checked<T> {
    return this.empty ? { ok: true, value } : { ok: false, errors: this.details };
  }
}

/** Fields of one JSON object; `prefix` makes paths such as `charges[2].` */
export class Fields {
  readonly obj: Record<string, unknown>;

  constructor(
    raw: unknown,
    readonly sink: ErrorSink,
    readonly prefix = "",
  ) {
    this.obj = isRecord(raw) ? raw : {};
  }

  path(key: string): string {
    return this.prefix + key;
  }

  fail(key: string, code: string): void {
    this.sink.add(this.path(key), code);
  }

  private bad(key: string, code: string): undefined {
    this.fail(key, code);
    return undefined;
  }

  /** Sent at all (null included): on update, an absent field keeps its value, a null one clears it. */
  has(key: string): boolean {
    return this.obj[key] !== undefined;
  }

  /**
   * Reads `key` with `read`, or keeps `current` when `updating` and the field was not sent; a
   * field that reads as nothing also yields `current` (on create: the default).
   */
  take<T>(updating: boolean, key: string, read: () => T | undefined, current: T): T {
    if (updating && !this.has(key)) return current;
    const value = read();
    return value === undefined ? current : value;
  }

  /** A non-blank string (trimmed of nothing: codes are matched exactly, as in Lago). */
  requiredText(key: string, max = MAX_TEXT): string | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null || v === "") return this.bad(key, MANDATORY);
    if (typeof v !== "string" || v.length > max || v.includes("\u0000") || v.trim() === "") return this.bad(key, INVALID);
    if (!v.isWellFormed()) return this.bad(key, UNPAIRED_SURROGATE);
    return v;
  }

  /** A string or null ("" reads as null). */
  optionalText(key: string, max = MAX_DESCRIPTION): string | null | undefined {
    const v = this.obj[key];
    if (v === undefined) return undefined;
    if (v === null || v === "") return null;
    if (typeof v !== "string" || v.length > max || v.includes("\u0000")) return this.bad(key, INVALID);
    if (!v.isWellFormed()) return this.bad(key, UNPAIRED_SURROGATE);
    return v;
  }

  /** true/false; null reads as absent (Lago's `|| false` defaults). */
  bool(key: string): boolean | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "boolean") return this.bad(key, INVALID);
    return v;
  }

  /** One of `allowed`; null or absent reads as absent. */
  oneOf<T extends string>(key: string, allowed: readonly T[]): T | null | undefined {
    const v = this.obj[key];
    if (v === undefined) return undefined;
    if (v === null) return null;
    if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) return this.bad(key, INVALID);
    return v as T;
  }

  /**
   * A whole number of minor units, at least 0: a JSON integer or a string of digits (Rails casts
   * "1000" too). Beyond 2^53 a JSON number has already lost digits, so it is refused.
   */
  cents(key: string): bigint | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    let n: bigint | null = null;
    if (typeof v === "number" && Number.isSafeInteger(v)) n = BigInt(v);
    else if (typeof v === "string" && /^-?\d{1,16}$/.test(v)) n = BigInt(v);
    if (n === null || n > BigInt(Number.MAX_SAFE_INTEGER)) return this.bad(key, INVALID);
    if (n < 0n) return this.bad(key, OUT_OF_RANGE);
    return n;
  }

  /** A JSON integer (negative allowed) or null. */
  integer(key: string, min: number, max: number): number | null | undefined {
    const v = this.obj[key];
    if (v === undefined) return undefined;
    if (v === null) return null;
    if (typeof v !== "number" || !Number.isSafeInteger(v)) return this.bad(key, INVALID);
    if (v < min || v > max) return this.bad(key, OUT_OF_RANGE);
    return v;
  }

  /** A finite JSON number at least 0, or null. */
  nonNegativeNumber(key: string, max: number): number | null | undefined {
    const v = this.obj[key];
    if (v === undefined) return undefined;
    if (v === null) return null;
    if (typeof v !== "number" || !Number.isFinite(v)) return this.bad(key, INVALID);
    if (v < 0 || v > max) return this.bad(key, OUT_OF_RANGE);
    return v;
  }

  /** An array (null reads as absent); each element is handed over with its index. */
  array(key: string): unknown[] | null | undefined {
    const v = this.obj[key];
    if (v === undefined) return undefined;
    if (v === null) return null;
    if (!Array.isArray(v)) return this.bad(key, INVALID);
    return v;
  }

  /** A list of non-empty strings, duplicates dropped; null, absent and [] read as null. */
  stringList(key: string): string[] | null | undefined {
    const v = this.obj[key];
    if (v === undefined) return undefined;
    if (v === null) return null;
    if (!Array.isArray(v) || v.some((s) => typeof s !== "string" || s === "" || s.length > MAX_TEXT || s.includes("\u0000"))) {
      return this.bad(key, INVALID);
    }
    return v.length === 0 ? null : [...new Set(v as string[])];
  }
}

export { hasNul } from "../../../shared/codes.ts";
