-- Charges addressed by a code of their own (Lago's /plans/:code/charges/:charge_code) and charge
-- filters by a lago_id (…/filters/:filter_id).
--
-- Charge codes are unique per plan among live charges. A charge written without a code gets one
-- derived from its metric, and so does every live charge here that has none: the metric's code,
-- or, when the plan already has a live charge with that code, the metric's code followed by `_2`,
-- `_3`, … (the first one free), charges taken in plan order (position, then id). The catalog applies
-- the same rule on every plan write (core/plan.ts, `withChargeCodes`). The column stays nullable:
-- a plan write clears the codes it is about to change first, so two charges can swap codes.

ALTER TABLE charge_filters ADD COLUMN lago_id uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX charge_filters_lago_id_idx ON charge_filters (lago_id);

DO $$
DECLARE
  r record;
  candidate text;
  n int;
BEGIN
  FOR r IN SELECT c.id, c.plan_id, m.code AS metric_code
             FROM charges c JOIN billable_metrics m ON m.id = c.billable_metric_id
            WHERE c.deleted_at IS NULL AND c.code IS NULL
            ORDER BY c.plan_id, c.position, c.id
  LOOP
    candidate := r.metric_code;
    n := 1;
    WHILE EXISTS (SELECT 1 FROM charges WHERE plan_id = r.plan_id AND deleted_at IS NULL AND code = candidate) LOOP
      n := n + 1;
      candidate := r.metric_code || '_' || n;
    END LOOP;
    UPDATE charges SET code = candidate WHERE id = r.id;
  END LOOP;
END $$;

CREATE UNIQUE INDEX charges_plan_code_idx ON charges (org_id, plan_id, code) WHERE deleted_at IS NULL;
