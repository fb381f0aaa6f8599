// What a queued live event costs in memory, roughly: what a subscription's byte budget counts (see Feed). Payloads are
// JSON-safe objects whose weight is almost all in their strings (base64 ciphertext), so the estimate walks them and
// charges a small fixed cost per value and per property for the rest. Pure.

const VALUE = 16;
const PROPERTY = 8;
const MAX_DEPTH = 8;

/** Approximate bytes held by a JSON-like value: string lengths and byte arrays in full, small costs for the rest. */
export function footprint(value: unknown, depth = 0): number {
  if (typeof value === "string") return VALUE + value.length;
  if (value === null || typeof value !== "object" || depth > MAX_DEPTH) return VALUE;
  if (ArrayBuffer.isView(value)) return VALUE + value.byteLength;
  let n = VALUE;
  if (Array.isArray(value)) {
    for (const v of value) n += PROPERTY + footprint(v, depth + 1);
    return n;
  }
  for (const k in value) n += PROPERTY + k.length + footprint((value as Record<string, unknown>)[k], depth + 1);
  return n;
}

/**
 * Whether one more item of `size` bytes would put a consumer past its bounds. One item is always let in when nothing
 * is held, so a budget below the largest event still delivers to a consumer that keeps up.
 */
export function overflows(held: { count: number; bytes: number }, size: number, bounds: { count: number; bytes: number }): boolean {
  if (held.count >= bounds.count) return true;
  return held.count > 0 && held.bytes + size > bounds.bytes;
}
