// Ids as the edge accepts them: one spelling per value, and only values the database can hold. A UUID that came in
// upper case and went on as sent would count as a fresh rate-limit subject and name a live channel nobody publishes
// on; a decimal past int64 or a "uuid" of dashes would reach PostgreSQL and fail there as an internal error.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const INT64_MAX = (1n << 63n) - 1n;
// libsignal addresses devices 1 to 127.
export const MAX_DEVICE_ID = 127;
// The largest time a JavaScript Date holds (ms since 1970).
const MAX_DATE_MS = 8.64e15;

/** The lowercase spelling of a UUID; null when the text is not one. */
export function canonicalUuid(id: string): string | null {
  return id.length === 36 && UUID.test(id) ? id.toLowerCase() : null;
}

/** The id in its canonical spelling when it is a UUID, else unchanged (it will be refused or means something else). */
export const canonicalId = (id: string): string => canonicalUuid(id) ?? id;

/** A device id libsignal can address. */
export const isDeviceId = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= MAX_DEVICE_ID;

/** A non-negative decimal that fits a PostgreSQL bigint; null otherwise. */
export function parseInt64(text: string): bigint | null {
  if (!/^[0-9]{1,19}$/.test(text)) return null;
  const v = BigInt(text);
  return v <= INT64_MAX ? v : null;
}

/** Milliseconds since 1970 as a Date, when a Date can hold them; null otherwise. */
export function parseEpochMillis(text: string): Date | null {
  if (!/^[0-9]{1,16}$/.test(text)) return null;
  const ms = Number(text);
  return ms <= MAX_DATE_MS ? new Date(ms) : null;
}
