/**
 * A signal that aborts after `ms` (with a TimeoutError) or when `parent` aborts, on a timer this
 * code holds. `AbortSignal.any([AbortSignal.timeout(ms), …])` can be garbage-collected before its
 * timer fires on Node 20, and the request it guards then never ends (seen as webhook deliveries
 * hanging under a full test run). Call `clear()` once the guarded work is over.
 */
export function deadline(ms: number, parent?: AbortSignal): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException(`no answer within ${ms} ms`, "TimeoutError")), ms);
  const onParent = () => controller.abort(parent?.reason);
  if (parent !== undefined) {
    if (parent.aborted) controller.abort(parent.reason);
    else parent.addEventListener("abort", onParent, { once: true });
  }
  return {
    signal: controller.signal,
    clear() {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onParent);
    },
  };
}
