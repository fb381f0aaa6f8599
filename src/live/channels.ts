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
  /** A user's presence changes. */
  presence: (userId: string) => `presence:${userId}`,
  /** Revocations every node must act on (close a deactivated device's sockets). */
  control: "control",
} as const;

export type ControlEvent = { kind: "deviceRevoked"; userId: string; deviceId: number };
