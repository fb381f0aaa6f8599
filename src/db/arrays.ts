// Array parameters of the hot statements, as PostgreSQL array literals built in one join. pg builds a literal from a
// JS array element by element (each one stringified, searched for backslashes and quotes, quoted, and appended to a
// growing string): the largest single allocator of a batch of sends (8.5% of the server's allocations in the 1:1
// lifecycle). Ids, numbers, timestamps and base64 or hex never need quoting, so their literal is the values joined.

// What an unquoted element may not hold: the literal's own syntax, and white space (trimmed by PostgreSQL).
const NEEDS_QUOTING = /[{}",\\\s]/;

/**
 * `{a,b,…}` for elements that need no quoting (uuids, integers, ISO timestamps, base64, hex, enum names); null is
 * NULL. An element that would need quoting (free text) is refused rather than misread: pass such arrays to pg as
 * they are.
 */
export function plainArray(values: readonly (string | number | bigint | null)[]): string {
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null) {
      parts[i] = "NULL";
      continue;
    }
    const s = typeof v === "string" ? v : String(v);
    if (s.length === 0 || NEEDS_QUOTING.test(s) || (s.length === 4 && s.toUpperCase() === "NULL")) {
      throw new Error("plainArray: an element needs quoting; pass this array to pg as an array");
    }
    parts[i] = s;
  }
  return `{${parts.join(",")}}`;
}
