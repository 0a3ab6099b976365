import { describe, expect, it } from "vitest";
import type { Charge } from "../../../src/modules/catalog/index.ts";
import { batchable, type BatchableSubscription } from "../../../src/modules/invoicing/core/batch.ts";
import { dueInstants } from "../../../src/modules/invoicing/index.ts";
import { terms } from "./helpers.ts";

const charge = (over: Partial<{ payInAdvance: boolean; readable: boolean }> = {}) => ({ payInAdvance: over.payInAdvance ?? false, readable: over.readable ?? true }) as unknown as Charge;
const readsInBatch = (c: Charge) => (c as unknown as { readable: boolean }).readable;
const sub = (over: Partial<BatchableSubscription["plan"]> & { status?: string } = {}): BatchableSubscription => {
  const { status, ...plan } = over;
  return { status: status ?? "active", plan: { payInAdvance: false, minimumCommitment: null, usageThresholds: [], charges: [charge()], ...plan } };
};
const march = terms("2024-03-01T00:00:00Z");
const [periodic] = dueInstants(march, null, new Date("2024-04-01T00:00:05Z"), 1);
const terminated = terms("2024-03-01T00:00:00Z", { terminatedAt: "2024-03-20T00:00:00Z" });
const [final] = dueInstants(terminated, null, new Date("2024-04-01T00:00:05Z"), 1);
const advance = terms("2024-03-01T00:00:00Z", { payInAdvance: true });
const [advanceStart] = dueInstants(advance, null, new Date("2024-03-01T00:00:05Z"), 1);

describe("which billing instants the billing job bills in a batch", () => {
  it.each([
    ["a plain periodic invoice in arrears", sub(), march, periodic, true],
    ["a plan without charges", sub({ charges: [] }), march, periodic, true],
    ["a terminated subscription's final invoice", sub({ status: "terminated" }), terminated, final, false],
    ["a plan paid in advance", sub({ payInAdvance: true }), advance, advanceStart, false],
    ["a minimum commitment", sub({ minimumCommitment: { amountCents: 100n } }), march, periodic, false],
    ["usage thresholds", sub({ usageThresholds: [{ amountCents: 100n }] }), march, periodic, false],
    ["a charge paid in advance", sub({ charges: [charge(), charge({ payInAdvance: true })] }), march, periodic, false],
    ["a charge whose usage cannot be read in a batch (grouped, prorated, percentage...)", sub({ charges: [charge(), charge({ readable: false })] }), march, periodic, false],
  ])("%s", (_name, s, t, instant, expected) => {
    expect(instant).toBeDefined();
    expect(batchable(s, t, instant!, readsInBatch)).toBe(expected);
  });
});
