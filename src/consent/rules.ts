// Consent's pure decisions: who may see whose live state (presence, last seen, typing), and the bounds of a report.
import { badInput } from "../errors.ts";

export const PRESENCE_VISIBILITIES = ["EVERYONE", "CONTACTS", "NOBODY"] as const;
export type PresenceVisibility = (typeof PRESENCE_VISIBILITIES)[number];

export const MAX_REPORT_REASON = 500;
export const MAX_REPORT_EXCERPT = 4000;
export const MAX_REQUESTS = 200;

/** What the store knows of one target as seen by one viewer. */
export interface Relation {
  /** The target accepted the viewer (wrote to them or accepted their request). */
  accepted: boolean;
  /** Either blocked the other. */
  blocked: boolean;
  visibility: PresenceVisibility;
}

/**
 * Whether `viewer` may see `target`'s presence and last seen. A blocked pair never (either way: a blocker is not
 * watched by the one they blocked, and does not watch them); NOBODY hides from everyone else; CONTACTS (the default)
 * shows to those the target accepted and to fellow group members; EVERYONE to any other user.
 */
export function maySeePresence(viewer: string, target: string, r: Relation, sharesGroup: boolean): boolean {
  if (viewer === target) return true;
  if (r.blocked || r.visibility === "NOBODY") return false;
  return r.visibility === "EVERYONE" || r.accepted || sharesGroup;
}

/** A report's free text, trimmed; empty is absent. Too long is refused rather than cut (the reporter chose it). */
export function reportText(value: string | null | undefined, max: number, field: string): string | null {
  const v = value?.trim() ?? "";
  if (v.length > max) throw badInput(`${field}: at most ${max} characters`);
  return v === "" ? null : v;
}

export const pairKey = (from: string, to: string) => `${from}|${to}`;
