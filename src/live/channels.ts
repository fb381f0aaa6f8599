// Channel names, in one place so publishers and subscribers cannot drift apart.
export const channels = {
  /** Everything for one device's inbox: envelopes, receipts, key and group events. */
  device: (userId: string, deviceId: number) => `device:${userId}:${deviceId}`,
  /** Typing in one conversation (1:1 or group). */
  conversation: (conversationId: string) => `conversation:${conversationId}`,
  /** Every event of one MLS group, published once for all its member devices. */
  group: (groupId: string) => `group:${groupId}`,
  /** Tells one device's live group stream that it joined a group (created it, or was added). */
  groupJoins: (userId: string, deviceId: number) => `group-joins:${userId}:${deviceId}`,
  /** A user's presence changes, and ConsentChanged when who may see the user's live state changed. */
  presence: (userId: string) => `presence:${userId}`,
  /** Revocations every node must act on (close a deactivated device's sockets). */
  control: "control",
} as const;

export type ControlEvent = { kind: "deviceRevoked"; userId: string; deviceId: number };

/**
 * Who may see this user's live state, or whose live state this user may see, changed (a block either way, the
 * presence privacy setting, an acceptance). Published on the user's presence channel, which every presence stream
 * watching the user already listens to, so open streams (on every node) re-read consent once instead of per event.
 */
export type ConsentChanged = { consentChanged: true; userId: string };
export const isConsentChanged = (e: unknown): e is ConsentChanged =>
  typeof e === "object" && e !== null && (e as Partial<ConsentChanged>).consentChanged === true;
