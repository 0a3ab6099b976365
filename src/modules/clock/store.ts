// SQL for test clocks: one row per frozen organization.
import type { Queryable } from "../../db/db.ts";

export async function loadFrozenClocks(q: Queryable): Promise<Map<number, number>> {
  const { rows } = await q.query<{ org_id: number; frozen_at: Date }>("SELECT org_id, frozen_at FROM test_clocks");
  return new Map(rows.map((r) => [Number(r.org_id), r.frozen_at.getTime()]));
}

export async function readFrozenClock(q: Queryable, orgId: number, forUpdate = false): Promise<Date | null> {
  const { rows } = await q.query<{ frozen_at: Date }>(
    `SELECT frozen_at FROM test_clocks WHERE org_id = $1${forUpdate ? " FOR UPDATE" : ""}`,
    [orgId],
  );
  return rows[0]?.frozen_at ?? null;
}

/**
 * Moves the organization's clock to `to` unless it is already later (a concurrent move won):
 * false then. The guard sits in the statement itself, so two processes freezing the same
 * organization for the first time cannot both win.
 */
export async function writeFrozenClock(q: Queryable, orgId: number, to: Date, now: Date): Promise<boolean> {
  const { rows } = await q.query(
    `INSERT INTO test_clocks (org_id, frozen_at, updated_at) VALUES ($1, $2, $3)
     ON CONFLICT (org_id) DO UPDATE SET frozen_at = EXCLUDED.frozen_at, updated_at = EXCLUDED.updated_at
       WHERE test_clocks.frozen_at <= EXCLUDED.frozen_at
     RETURNING org_id`,
    [orgId, to, now],
  );
  return rows.length === 1;
}
