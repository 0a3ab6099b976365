// In-process read-through cache of catalog objects for the hot paths (ingest, rating, usage).
//
// Invariants:
// - A write in this process drops the entries it touches once it has committed, so the next read
//   here sees it. Writes in other processes show within `ttlMs`.
// - A read that raced a write never stores what it read: every write bumps its organization's
//   sequence, and a load stores its result only if the sequence did not move while it ran.
// - After the first read a key never waits on the database again while it stays cached: an entry
//   past its TTL is served once more while one background load refreshes it.
// - Absence is cached too (an event code matching no metric costs no query per event).

interface Entry<T> {
  value: T;
  expiresAt: number;
}

type Kind = "metric" | "planCode" | "planId";

class OrgEntries {
  seq = 0;
  readonly maps: Record<Kind, Map<string, Entry<unknown>>> = { metric: new Map(), planCode: new Map(), planId: new Map() };
  readonly loading = new Map<string, Promise<unknown>>();
}

export interface CacheOptions {
  /** How long an entry is trusted before it is refreshed (writes elsewhere show within this). */
  ttlMs: number;
  /** Bound on entries over all organizations; past it the cache starts over. */
  maxEntries: number;
}

export class CatalogCache {
  private readonly orgs = new Map<number, OrgEntries>();
  private size = 0;

  constructor(
    private readonly now: () => number,
    private readonly options: CacheOptions,
  ) {}

  read<T>(orgId: number, kind: Kind, key: string, load: () => Promise<T>): Promise<T> {
    const org = this.org(orgId);
    const hit = org.maps[kind].get(key) as Entry<T> | undefined;
    if (hit !== undefined) {
      if (hit.expiresAt <= this.now()) this.load(org, kind, key, load).catch(() => undefined);
      return Promise.resolve(hit.value);
    }
    return this.load(org, kind, key, load);
  }

  /**
   * Drops the metric entries (every code it had) and, unless the metric is new, every plan of the
   * organization (plans embed their metrics).
   */
  invalidateMetric(orgId: number, codes: readonly string[], plansToo = true): void {
    const org = this.orgs.get(orgId);
    if (org === undefined) return;
    org.seq++;
    for (const code of codes) this.drop(org, "metric", code);
    if (!plansToo) return;
    this.size -= org.maps.planCode.size + org.maps.planId.size;
    org.maps.planCode.clear();
    org.maps.planId.clear();
  }

  invalidatePlan(orgId: number, codes: readonly string[], id: number | null): void {
    const org = this.orgs.get(orgId);
    if (org === undefined) return;
    org.seq++;
    for (const code of codes) this.drop(org, "planCode", code);
    if (id !== null) this.drop(org, "planId", String(id));
  }

  get entries(): number {
    return this.size;
  }

  private org(orgId: number): OrgEntries {
    let org = this.orgs.get(orgId);
    if (org === undefined) {
      org = new OrgEntries();
      this.orgs.set(orgId, org);
    }
    return org;
  }

  private drop(org: OrgEntries, kind: Kind, key: string): void {
    if (org.maps[kind].delete(key)) this.size--;
  }

  /** One load per key at a time; concurrent readers share it. */
  private load<T>(org: OrgEntries, kind: Kind, key: string, load: () => Promise<T>): Promise<T> {
    const flightKey = `${kind}\u0000${key}`;
    const pending = org.loading.get(flightKey) as Promise<T> | undefined;
    if (pending !== undefined) return pending;
    const seq = org.seq;
    const promise = load()
      .then((value) => {
        if (org.seq === seq) this.store(org, kind, key, value);
        return value;
      })
      .finally(() => org.loading.delete(flightKey));
    org.loading.set(flightKey, promise);
    return promise;
  }

  private store(org: OrgEntries, kind: Kind, key: string, value: unknown): void {
    const map = org.maps[kind];
    if (!map.has(key)) {
      if (this.size >= this.options.maxEntries) this.clear();
      this.size++;
    }
    map.set(key, { value, expiresAt: this.now() + this.options.ttlMs });
  }

  /** Starts over (bounded memory); sequences move so loads in flight do not refill stale entries. */
  private clear(): void {
    for (const org of this.orgs.values()) {
      org.seq++;
      for (const map of Object.values(org.maps)) map.clear();
    }
    this.size = 0;
  }
}
