// Analytics: read-only monthly figures over the organization's invoices. The window ends with the
// current month by the organization's clock (its test clock when one is set).
import type { Queryable } from "../../db/db.ts";
import type { Clock } from "../../shared/clock.ts";
import { addMonths, dateOfInstant, firstDay, monthWindow, type MonthKey } from "./core/months.ts";
import { mrrByMonth } from "./core/mrr.ts";
import type { AnalyticsQuery } from "./core/query.ts";
import { grossRevenuesJson, invoiceCollectionsJson, invoicedUsagesJson, mrrsJson, overdueBalancesJson } from "./core/series.ts";
import { type UsageQuery, usagesJson } from "./core/usage.ts";
import * as store from "./store.ts";

/** A yearly fee, the longest spread, reaches this many months past the month it was issued in. */
const LONGEST_SPREAD_MONTHS = 12;

export class AnalyticsService {
  /** `reads`: figures may lag a little, so they read from the read replica when one is configured. */
  constructor(
    private readonly reads: Queryable,
    private readonly clock: Clock,
  ) {}

  private scope(orgId: number, query: AnalyticsQuery): { window: MonthKey[]; scope: store.Scope; now: number } {
    const now = this.clock.now(orgId);
    const window = monthWindow(now, query.months);
    const scope: store.Scope = {
      orgId,
      from: firstDay(window[0]!),
      to: firstDay(addMonths(window[window.length - 1]!, 1)),
      currency: query.currency,
      externalCustomerId: query.externalCustomerId,
    };
    return { window, scope, now };
  }

  async grossRevenues(orgId: number, query: AnalyticsQuery) {
    const { window, scope } = this.scope(orgId, query);
    return grossRevenuesJson(window, query.currency, await store.grossRevenue(this.reads, scope));
  }

  async invoiceCollections(orgId: number, query: AnalyticsQuery) {
    const { window, scope } = this.scope(orgId, query);
    return invoiceCollectionsJson(window, query.currency, await store.invoiceCollection(this.reads, scope));
  }

  async invoicedUsages(orgId: number, query: AnalyticsQuery) {
    const { window, scope } = this.scope(orgId, query);
    return invoicedUsagesJson(window, await store.invoicedUsage(this.reads, scope));
  }

  async overdueBalances(orgId: number, query: AnalyticsQuery) {
    const { window, scope, now } = this.scope(orgId, query);
    return overdueBalancesJson(window, query.currency, await store.overdueBalance(this.reads, scope, dateOfInstant(now)));
  }

  /** "Today" for the organization (UTC date of its clock): the default end of the usage report. */
  today(orgId: number): string {
    return dateOfInstant(this.clock.now(orgId));
  }

  async usages(orgId: number, query: UsageQuery) {
    const rows = await store.dailyUsage(this.reads, orgId, query);
    return usagesJson(await store.organizationPublicId(this.reads, orgId), query.granularity, rows);
  }

  async mrrs(orgId: number, query: AnalyticsQuery) {
    const { window, scope } = this.scope(orgId, query);
    const groups = await store.subscriptionFees(this.reads, scope, firstDay(addMonths(window[0]!, -LONGEST_SPREAD_MONTHS)));
    return mrrsJson(window, query.currency, mrrByMonth(groups));
  }
}
