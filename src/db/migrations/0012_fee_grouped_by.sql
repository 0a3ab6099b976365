-- A charge fee of a bucket priced by pricing group keys bills one group: its values by key (Lago's
-- fee `grouped_by`); null for every other fee. GET /fees/:id/events lists only the group's events.
ALTER TABLE fees ADD COLUMN grouped_by jsonb;
