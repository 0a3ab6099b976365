// The in-process tier (L1): a bounded LRU with a per-entry deadline. Pure: time comes in as a number.

interface Slot<V> {
  value: V;
  expiresAt: number;
}

export type Lookup<V> = { hit: true; value: V } | { hit: false; expired: boolean };

/**
 * At most `maxItems` entries; a hit moves the entry to the young end, an insert past the bound
 * evicts the oldest (reported to `onEvict`). An entry past its deadline is a miss and is dropped.
 */
export class Lru<V> {
  // A Map iterates in insertion order: the first key is the least recently used.
  private readonly slots = new Map<string, Slot<V>>();

  constructor(
    private readonly maxItems: number,
    private readonly onEvict: (key: string) => void = () => {},
  ) {
    if (!Number.isSafeInteger(maxItems) || maxItems < 1) throw new RangeError(`maxItems must be a positive integer, got ${maxItems}`);
  }

  get size(): number {
    return this.slots.size;
  }

  get(key: string, now: number): Lookup<V> {
    const slot = this.slots.get(key);
    if (slot === undefined) return MISS;
    this.slots.delete(key);
    if (slot.expiresAt <= now) return EXPIRED;
    this.slots.set(key, slot);
    return { hit: true, value: slot.value };
  }

  set(key: string, value: V, expiresAt: number): void {
    if (!this.slots.delete(key) && this.slots.size >= this.maxItems) {
      const oldest = this.slots.keys().next().value as string;
      this.slots.delete(oldest);
      this.onEvict(oldest);
    }
    this.slots.set(key, { value, expiresAt });
  }

  delete(key: string): boolean {
    return this.slots.delete(key);
  }

  clear(): void {
    this.slots.clear();
  }
}

const MISS: Lookup<never> = { hit: false, expired: false };
const EXPIRED: Lookup<never> = { hit: false, expired: true };
