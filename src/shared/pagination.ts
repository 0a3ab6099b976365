// Lago's pagination: `page` and `per_page` query parameters in, `meta` out.
import type { FieldErrors } from "./errors.ts";

/**
 * A whole-number query parameter between 1 and `max`: `fallback` when absent; otherwise an error
 * naming the parameter is added to `errors` (callers collect every broken parameter).
 */
export function positiveIntParam(value: unknown, name: string, fallback: number, max: number, errors: FieldErrors): number {
  if (value === undefined || value === "") return fallback;
  if (typeof value !== "string" || !/^\d{1,9}$/.test(value) || Number(value) < 1 || Number(value) > max) {
    errors[name] = [`must_be_an_integer_between_1_and_${max}`];
    return fallback;
  }
  return Number(value);
}

export interface PaginationMeta {
  current_page: number;
  next_page: number | null;
  prev_page: number | null;
  total_pages: number;
  total_count: number;
}

export function paginationMeta(page: number, perPage: number, total: number): PaginationMeta {
  const totalPages = Math.ceil(total / perPage);
  return {
    current_page: page,
    next_page: page < totalPages ? page + 1 : null,
    prev_page: page > 1 ? page - 1 : null,
    total_pages: totalPages,
    total_count: total,
  };
}
