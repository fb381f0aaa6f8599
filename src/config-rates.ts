// The abuse limits' settings: the families, their RATE_LIMIT_* variables with defaults, and how a limit is written
// ("60/1s"). src/config.ts merges rateEnv into its schema and reads the result back with rateLimitsOf.
import { z } from "zod";

const UNIT_SECONDS = { s: 1, m: 60, h: 3600 } as const;
/** "60/1s" = at most 60 calls in any fixed 1-second window; "off" = no limit. */
export const rate = z
  .string()
  .regex(/^(off|\d{1,7}\/\d{1,5}[smh])$/, 'must be "off" or like "60/1s", "20/1h"')
  .transform((v): RateLimit | null => {
    if (v === "off") return null;
    const [points, window] = v.split("/");
    const seconds = Number(window.slice(0, -1)) * UNIT_SECONDS[window.slice(-1) as keyof typeof UNIT_SECONDS];
    return { points: Number(points), windowSeconds: seconds };
  });

export interface RateLimit {
  points: number;
  windowSeconds: number;
}

/** Each family (of mutations, queries, subscriptions) is counted per device (when authenticated) and per client IP. */
export const RATE_LIMIT_FAMILIES = [
  "sends",
  "keyUploads",
  "bundleClaims",
  "registrations",
  "deviceLinks",
  "groupCommits",
  "receipts",
  "attachments",
  "turnCredentials",
  "other",
  "lookups",
  "reads",
  "subscriptions",
] as const;
export type RateLimitFamily = (typeof RATE_LIMIT_FAMILIES)[number];
export type RateLimits = Record<RateLimitFamily, { device: RateLimit | null; ip: RateLimit | null }> & {
  /** Claims of one target user's keys by one requesting device (Signal counts pre-key claims per pair). */
  bundleClaimsPerTarget: RateLimit | null;
};

// Defaults, after Signal-Server's limiters where it has one: ~60 messages/s per sender, pre-key claims per requester
// and per requester-target pair, few registrations and device links per source.
const RATE_DEFAULTS = {
  RATE_LIMIT_SENDS: "60/1s",
  RATE_LIMIT_SENDS_IP: "600/1s",
  RATE_LIMIT_KEY_UPLOADS: "30/1m",
  RATE_LIMIT_KEY_UPLOADS_IP: "300/1m",
  RATE_LIMIT_BUNDLE_CLAIMS: "100/1m",
  RATE_LIMIT_BUNDLE_CLAIMS_IP: "600/1m",
  RATE_LIMIT_BUNDLE_CLAIMS_PER_TARGET: "10/1m",
  RATE_LIMIT_REGISTRATIONS: "off",
  RATE_LIMIT_REGISTRATIONS_IP: "20/1h",
  RATE_LIMIT_DEVICE_LINKS: "10/10m",
  RATE_LIMIT_DEVICE_LINKS_IP: "30/10m",
  RATE_LIMIT_GROUP_COMMITS: "60/1m",
  RATE_LIMIT_GROUP_COMMITS_IP: "600/1m",
  RATE_LIMIT_RECEIPTS: "300/10s",
  RATE_LIMIT_RECEIPTS_IP: "3000/10s",
  RATE_LIMIT_ATTACHMENTS: "120/1m",
  RATE_LIMIT_ATTACHMENTS_IP: "1200/1m",
  RATE_LIMIT_TURN_CREDENTIALS: "30/1m",
  RATE_LIMIT_TURN_CREDENTIALS_IP: "300/1m",
  RATE_LIMIT_OTHER: "120/1m",
  RATE_LIMIT_OTHER_IP: "1200/1m",
  RATE_LIMIT_LOOKUPS: "60/1m",
  RATE_LIMIT_LOOKUPS_IP: "300/1m",
  RATE_LIMIT_READS: "600/1m",
  RATE_LIMIT_READS_IP: "6000/1m",
  RATE_LIMIT_SUBSCRIPTIONS: "60/1m",
  RATE_LIMIT_SUBSCRIPTIONS_IP: "600/1m",
} as const;
export const rateEnv = Object.fromEntries(Object.entries(RATE_DEFAULTS).map(([k, v]) => [k, rate.prefault(v)])) as {
  [K in keyof typeof RATE_DEFAULTS]: z.ZodPrefault<typeof rate>;
};

/** The families' limits from the parsed environment (rateEnv's variables). */
export function rateLimitsOf(parsed: object): RateLimits {
  const env = parsed as Record<string, RateLimit | null | undefined>;
  const variable = (f: string) => `RATE_LIMIT_${f.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
  const families = RATE_LIMIT_FAMILIES.map((f) => [f, { device: env[variable(f)] ?? null, ip: env[`${variable(f)}_IP`] ?? null }]);
  return { ...Object.fromEntries(families), bundleClaimsPerTarget: env.RATE_LIMIT_BUNDLE_CLAIMS_PER_TARGET ?? null } as RateLimits;
}
