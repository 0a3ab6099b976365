// What the Redis tier stores: JSON in which the values JSON cannot carry survive exactly. Money never
// becomes a JS number on the way: bigint cents and decimals travel as their exact decimal strings.
//
// A value JSON cannot carry is written as an object with the single key TAG holding [kind, payload]:
// "b" bigint, "n" decimal (decimal.js), "d" Date (epoch ms), "u" undefined, "m" Map, "s" Set, and
// "o" for a plain object that itself has a TAG key (so stored data can never pass for a tag).
// Anything else that is not plain data (class instances, functions, symbols, non-finite numbers)
// is refused when encoding rather than silently changed.
import { Decimal } from "../../../shared/money.ts";

const TAG = "\u0001";

export class CodecError extends Error {
  constructor(path: string, what: string) {
    super(`cannot encode ${what} at ${path || "(root)"}`);
    this.name = "CodecError";
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const tagged = (kind: string, payload: Json): Json => ({ [TAG]: [kind, payload] });

function encodeValue(value: unknown, path: string): Json {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      if (!Number.isFinite(value)) throw new CodecError(path, `the number ${value}`);
      return value;
    case "bigint":
      return tagged("b", value.toString());
    case "undefined":
      return tagged("u", 0);
    case "object": {
      if (value === null) return null;
      if (Array.isArray(value)) return value.map((v, i) => encodeValue(v, `${path}[${i}]`));
      if (value instanceof Date) {
        const ms = value.getTime();
        if (Number.isNaN(ms)) throw new CodecError(path, "an invalid Date");
        return tagged("d", ms);
      }
      if (Decimal.isDecimal(value)) {
        const d = value as Decimal;
        if (!d.isFinite()) throw new CodecError(path, `the decimal ${d.toString()}`);
        return tagged("n", d.toString());
      }
      if (value instanceof Map) return tagged("m", [...value].map(([k, v], i) => [encodeValue(k, `${path}<key ${i}>`), encodeValue(v, `${path}<${i}>`)]));
      if (value instanceof Set) return tagged("s", [...value].map((v, i) => encodeValue(v, `${path}<${i}>`)));
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw new CodecError(path, `an instance of ${proto?.constructor?.name ?? "a class"}`);
      const out: { [key: string]: Json } = {};
      for (const key of Object.keys(value)) out[key] = encodeValue((value as Record<string, unknown>)[key], `${path}.${key}`);
      return Object.hasOwn(out, TAG) ? tagged("o", out) : out;
    }
    default:
      throw new CodecError(path, `a ${typeof value}`);
  }
}

function decodeValue(json: Json): unknown {
  if (json === null || typeof json !== "object") return json;
  if (Array.isArray(json)) return json.map(decodeValue);
  const tag = json[TAG];
  if (tag === undefined) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(json)) out[key] = decodeValue(json[key]!);
    return out;
  }
  const [kind, payload] = tag as [string, Json];
  switch (kind) {
    case "b":
      return BigInt(payload as string);
    case "n":
      return new Decimal(payload as string);
    case "d":
      return new Date(payload as number);
    case "u":
      return undefined;
    case "m":
      return new Map((payload as [Json, Json][]).map(([k, v]) => [decodeValue(k), decodeValue(v)]));
    case "s":
      return new Set((payload as Json[]).map(decodeValue));
    case "o": {
      const out: Record<string, unknown> = {};
      for (const [key, v] of Object.entries(payload as { [key: string]: Json })) out[key] = decodeValue(v);
      return out;
    }
    default:
      throw new Error(`unknown cache codec tag ${JSON.stringify(kind)}`);
  }
}

/** The stored text of `value`; throws CodecError for anything it could not bring back exactly. */
export function encode(value: unknown): string {
  return JSON.stringify(encodeValue(value, ""));
}

export function decode<T>(text: string): T {
  return decodeValue(JSON.parse(text) as Json) as T;
}
