// Subscription requests as Lago's API takes them: create (`POST /subscriptions`), update (`PUT`),
// the list query and the `status` selector. Every broken field is reported, with Lago's codes.
// Pure: "now" is handed in.
import type { FieldErrors } from "../../../shared/errors.ts";
import { BILLING_TIMES, type BillingTime } from "../../billing/core/index.ts";
import { type Checked, ErrorSink } from "../../catalog/index.ts";
import { parseFrozenTime } from "../../clock/index.ts";
import { SUBSCRIPTION_STATUSES, type SubscriptionStatus, isSubscriptionStatus } from "./types.ts";
import { positiveIntParam } from "../../../shared/pagination.ts";

const MANDATORY = "value_is_mandatory";
const INVALID = "value_is_invalid";
const INVALID_DATE = "invalid_date";
const MAX_ID = 255;

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/** An external id as stored: a non-blank string PostgreSQL can hold and compare. */
export const isExternalId = (v: unknown): v is string =>
  typeof v === "string" && v.length > 0 && v.length <= MAX_ID && !v.includes("\u0000") && v.isWellFormed() && v.trim() !== "";

/**
 * A request read field by field: `value` holds what could be read (a broken field reads as absent or
 * a placeholder) so checks that need other data (the plan, for plan_overrides) still run, and
 * `errors` every broken field. The request is acceptable only when `errors` is empty.
 */
export interface Read<T> {
  readonly value: T;
  readonly errors: FieldErrors;
}

export interface CreateDraft {
  readonly externalCustomerId: string;
  readonly planCode: string;
  readonly externalId: string;
  /** undefined: not sent (a plan change keeps the current name). */
  readonly name: string | null | undefined;
  readonly billingTime: BillingTime;
  readonly subscriptionAt: Date;
  /** undefined: not sent (a plan change keeps the current `ending_at`). */
  readonly endingAt: Date | null | undefined;
  /** The raw `plan_overrides` object, read against the plan once it is known; undefined when not sent. */
  readonly planOverrides: Record<string, unknown> | undefined;
}

export interface UpdateDraft {
  readonly name?: string | null;
  readonly endingAt?: Date | null;
  readonly subscriptionAt?: Date;
  readonly planOverrides?: Record<string, unknown>;
}

function readId(sink: ErrorSink, obj: Record<string, unknown>, key: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null || v === "") sink.add(key, MANDATORY);
  else if (!isExternalId(v)) sink.add(key, INVALID);
  else return v;
  return undefined;
}

function readName(sink: ErrorSink, obj: Record<string, unknown>): string | null | undefined {
  const v = obj["name"];
  if (v === undefined) return undefined;
  if (v === null || (typeof v === "string" && v.trim() === "")) return null;
  if (typeof v !== "string" || v.length > MAX_ID || v.includes("\u0000") || !v.isWellFormed()) {
    sink.add("name", INVALID);
    return undefined;
  }
  return v;
}

/** An ISO 8601 instant with an offset, or a date (midnight UTC); null and absent read as absent. */
function readDate(sink: ErrorSink, obj: Record<string, unknown>, key: string): Date | null | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (v === null || v === "") return null;
  const parsed = parseFrozenTime(v);
  if (!parsed.ok) {
    sink.add(key, INVALID_DATE);
    return undefined;
  }
  return parsed.at;
}

const utcDay = (d: Date) => Math.floor(d.getTime() / 86_400_000);

/**
 * Lago's rule for `ending_at` (Subscriptions::ValidateService): on a later day than today and than
 * `subscription_at`, in UTC.
 */
export const endingAtValid = (endingAt: Date, subscriptionAt: Date, now: Date): boolean =>
  utcDay(endingAt) > utcDay(now) && utcDay(endingAt) > utcDay(subscriptionAt);

function readOverrides(sink: ErrorSink, obj: Record<string, unknown>): Record<string, unknown> | undefined {
  const v = obj["plan_overrides"];
  if (v === undefined || v === null) return undefined;
  if (!isRecord(v)) {
    sink.add("plan_overrides", INVALID);
    return undefined;
  }
  return v;
}

/** `POST /subscriptions`'s `subscription` object; `subscription_at` defaults to `now` (the organization's clock). */
export function readCreateInput(raw: unknown, now: Date): Read<CreateDraft> {
  const sink = new ErrorSink();
  const obj = isRecord(raw) ? raw : {};
  const externalCustomerId = readId(sink, obj, "external_customer_id");
  const planCodeRaw = obj["plan_code"];
  let planCode: string | undefined;
  if (planCodeRaw === undefined || planCodeRaw === null || planCodeRaw === "") sink.add("plan_code", MANDATORY);
  else if (!isExternalId(planCodeRaw)) sink.add("plan_code", INVALID);
  else planCode = planCodeRaw;
  const externalId = readId(sink, obj, "external_id");
  const name = readName(sink, obj);

  let billingTime: BillingTime = "calendar";
  const bt = obj["billing_time"];
  if (bt !== undefined && bt !== null) {
    if (typeof bt === "string" && (BILLING_TIMES as readonly string[]).includes(bt)) billingTime = bt as BillingTime;
    else sink.add("billing_time", INVALID);
  }

  const subscriptionAt = readDate(sink, obj, "subscription_at") ?? now;
  const endingAt = readDate(sink, obj, "ending_at");
  // With a broken subscription_at, ending_at is still checked against today.
  if (endingAt && !endingAtValid(endingAt, sink.details["subscription_at"] ? now : subscriptionAt, now)) sink.add("ending_at", INVALID_DATE);
  const planOverrides = readOverrides(sink, obj);

  const value = {
    externalCustomerId: externalCustomerId ?? "",
    planCode: planCode ?? "",
    externalId: externalId ?? "",
    name,
    billingTime,
    subscriptionAt,
    endingAt,
    planOverrides,
  };
  return { value, errors: sink.details };
}

/**
 * `PUT /subscriptions/:external_id`'s `subscription` object. `subscription_at` applies only to a
 * subscription that has not started (`startMovable`; Lago checks its format but ignores it
 * otherwise), and `ending_at` is checked against the start that will hold.
 */
export function readUpdateInput(raw: unknown, now: Date, currentSubscriptionAt: Date, startMovable: boolean): Read<UpdateDraft> {
  const sink = new ErrorSink();
  const obj = isRecord(raw) ? raw : {};
  const draft: { -readonly [K in keyof UpdateDraft]: UpdateDraft[K] } = {};
  const name = readName(sink, obj);
  if (name !== undefined) draft.name = name;
  const sentAt = readDate(sink, obj, "subscription_at");
  const subscriptionAt = startMovable ? sentAt : undefined;
  if (subscriptionAt) draft.subscriptionAt = subscriptionAt;
  const endingAt = readDate(sink, obj, "ending_at");
  if (endingAt !== undefined) {
    draft.endingAt = endingAt;
    if (endingAt !== null && !endingAtValid(endingAt, subscriptionAt ?? currentSubscriptionAt, now)) {
      sink.add("ending_at", INVALID_DATE);
    }
  }
  const planOverrides = readOverrides(sink, obj);
  if (planOverrides !== undefined) draft.planOverrides = planOverrides;
  return { value: draft, errors: sink.details };
}

/** The `status` query parameter of GET / PUT / DELETE on one subscription. */
export function readStatusParam(v: unknown, allowed: readonly SubscriptionStatus[] = SUBSCRIPTION_STATUSES): Checked<SubscriptionStatus | undefined> {
  if (v === undefined || v === "") return { ok: true, value: undefined };
  if (typeof v === "string" && isSubscriptionStatus(v) && allowed.includes(v)) return { ok: true, value: v };
  return { ok: false, errors: { status: [INVALID] } };
}

/** Lago's default page size. */
export const DEFAULT_PER_PAGE = 100;
export const MAX_PER_PAGE = 1000;

export interface SubscriptionListQuery {
  readonly page: number;
  readonly perPage: number;
  readonly externalCustomerId?: string;
  readonly externalId?: string;
  readonly planCode?: string;
  /** Lago lists only active subscriptions unless `status[]` asks for others. */
  readonly statuses: readonly SubscriptionStatus[];
}

/** `GET /subscriptions`: `status[]=active&status[]=pending` (as Lago's clients send it) or `status=active`. */
export function readListQuery(q: Record<string, unknown>): Checked<SubscriptionListQuery> {
  const errors: FieldErrors = {};
  const single = (name: string): string | undefined => {
    const v = q[name];
    if (v === undefined || v === "") return undefined;
    if (!isExternalId(v)) {
      errors[name] = [INVALID];
      return undefined;
    }
    return v;
  };
  const int = (name: string, fallback: number, max: number): number => positiveIntParam(q[name], name, fallback, max, errors);
  const page = int("page", 1, 1_000_000);
  const perPage = int("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE);
  const rawStatuses = [q["status[]"], q["status"]].flatMap((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v])).filter((v) => v !== "");
  let statuses: SubscriptionStatus[] = ["active"];
  if (rawStatuses.length > 0) {
    if (rawStatuses.every(isSubscriptionStatus)) statuses = [...new Set(rawStatuses)];
    else errors["status"] = [INVALID];
  }
  const query: { -readonly [K in keyof SubscriptionListQuery]: SubscriptionListQuery[K] } = { page, perPage, statuses };
  const externalCustomerId = single("external_customer_id");
  if (externalCustomerId !== undefined) query.externalCustomerId = externalCustomerId;
  const externalId = single("external_id");
  if (externalId !== undefined) query.externalId = externalId;
  const planCode = single("plan_code");
  if (planCode !== undefined) query.planCode = planCode;
  return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, value: query };
}
