import { Decimal, ZERO, parseMoney } from "../../../shared/money.ts";

/** A broken charge property: `field` is its path (`graduated_ranges[1].to_value`), `code` Lago's error code. */
export interface FieldError {
  readonly field: string;
  readonly code: string;
  readonly reason: string;
}

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errors: FieldError[] };

const isRecord = (x: unknown): x is Readonly<Record<string, unknown>> =>
  typeof x === "object" && x !== null && !Array.isArray(x);

/**
 * Reads Lago charge `properties`, recording every broken field instead of stopping at the first.
 * A broken field reads as a placeholder value; callers must check `errors` before using the result.
 */
export class PropertyReader {
  private constructor(
    private readonly props: Readonly<Record<string, unknown>>,
    readonly errors: FieldError[],
    private readonly prefix: string,
  ) {}

  static of(properties: unknown): PropertyReader {
    const reader = new PropertyReader(isRecord(properties) ? properties : {}, [], "");
    if (!isRecord(properties)) reader.fail("properties", "invalid_properties", "must be an object");
    return reader;
  }

  result<T>(value: T): Parsed<T> {
    return this.errors.length === 0 ? { ok: true, value } : { ok: false, errors: this.errors };
  }

  fail(key: string, code: string, reason: string): void {
    this.errors.push({ field: this.prefix + key, code, reason });
  }

  isSet(key: string): boolean {
    return this.props[key] !== undefined && this.props[key] !== null;
  }

  /** A required non-negative decimal string: Lago sends money as strings so floats never creep in. */
  amount(key: string, code = "invalid_amount"): Decimal {
    if (!this.isSet(key)) {
      this.fail(key, code, "is required");
      return ZERO;
    }
    return this.optionalAmount(key, code) ?? ZERO;
  }

  optionalAmount(key: string, code = "invalid_amount"): Decimal | null {
    if (!this.isSet(key)) return null;
    const value = parseMoney(this.props[key]);
    if (value === null) this.fail(key, code, 'must be a decimal string such as "0.25"');
    else if (value.isNegative()) this.fail(key, code, "must not be negative");
    else return value;
    return ZERO;
  }

  /** A percentage rate: a decimal string from 0 to 100. */
  rate(key: string): Decimal {
    const rate = this.amount(key, "invalid_rate");
    if (rate.gt(100)) this.fail(key, "invalid_rate", "must be between 0 and 100");
    return rate;
  }

  /** An integer count (JSON number, as in Lago's API) of at least `min`; `fallback` when absent. */
  count(key: string, code: string, min: number, fallback?: number): number {
    const raw = this.props[key];
    if (!this.isSet(key) && fallback !== undefined) return fallback;
    if (!this.isSet(key)) this.fail(key, code, "is required");
    else if (typeof raw !== "number" || !Number.isSafeInteger(raw)) this.fail(key, code, "must be an integer");
    else if (raw < min) this.fail(key, code, `must be at least ${min}`);
    else return raw;
    return min;
  }

  /** A tier bound: a non-negative JSON number, or null when `nullable`. */
  bound(key: string, code: string, nullable: boolean): Decimal | null {
    const raw = this.props[key];
    if (!this.isSet(key)) {
      if (!nullable) this.fail(key, code, "is required");
      return null;
    }
    if (typeof raw !== "number" || !Number.isFinite(raw)) this.fail(key, code, "must be a number");
    else if (raw < 0) this.fail(key, code, "must not be negative");
    else return new Decimal(raw);
    return null;
  }

  /** A non-empty array of objects, one reader per element (fields named `key[i].field`). */
  list(key: string, missingCode: string, invalidCode: string): PropertyReader[] {
    const raw = this.props[key];
    if (!Array.isArray(raw) || raw.length === 0) {
      this.fail(key, missingCode, "must be a non-empty array");
      return [];
    }
    return raw.map((item: unknown, i) => {
      const path = `${this.prefix}${key}[${i}]`;
      if (!isRecord(item)) this.errors.push({ field: path, code: invalidCode, reason: "must be an object" });
      return new PropertyReader(isRecord(item) ? item : {}, this.errors, `${path}.`);
    });
  }
}
