// The group events members receive (live, on replay and through the inbox), shaped once per group, not per member.
import { base64 } from "../bytes.ts";
import { canonicalUuid, parseInt64 } from "../ids.ts";

export type GroupEventKind = "COMMIT" | "WELCOME" | "APPLICATION" | "MEMBERS_CHANGED" | "INFO_CHANGED" | "MESSAGE_DELETED";

/** A group event exactly as subscribers and replay hand it out: no per-subscriber work left to do. */
export interface GroupEventPayload {
  /** The member of the inbox's InboxEvent union this is. */
  __typename: "GroupEvent";
  expiresAt: null;
  id: string;
  groupId: string;
  seq: number;
  kind: GroupEventKind;
  epoch: number;
  senderUserId: string | null;
  senderDeviceId: number | null;
  /** base64 of the MLSMessage (COMMIT, WELCOME, APPLICATION). */
  message: string | null;
  /** When the server stored it (ISO). */
  serverTimestamp: string;
  /** MESSAGE_DELETED: the deleted message's id. */
  refersTo: string | null;
  /** Devices ("<userId>.<deviceId>") whose view of the group ends with this event. */
  removed?: string[];
}

// Group event ids travel through ackEnvelopes beside the inbox's decimal ids, so they carry their own mark.
const EVENT_ID_PREFIX = "g:";
const EVENT_ID = /^g:(.{36}):(\d{1,19})$/;

export const groupEventId = (groupId: string, seq: bigint | number) => `${EVENT_ID_PREFIX}${groupId}:${seq}`;

/** Whether an acknowledged id is the groups domain's to handle (valid or not). */
export const isGroupEventId = (id: string) => id.startsWith(EVENT_ID_PREFIX);

/** The group and sequence number of a group event id; null when it is not a well-formed one. */
export function parseGroupEventId(id: string): { groupId: string; seq: bigint } | null {
  const m = EVENT_ID.exec(id);
  const groupId = m && canonicalUuid(m[1]);
  const seq = m && parseInt64(m[2]);
  return groupId && seq !== null ? { groupId, seq } : null;
}

export function groupEvent(
  groupId: string,
  seq: bigint | number,
  kind: GroupEventKind,
  epoch: number,
  senderUserId: string | null,
  senderDeviceId: number | null,
  message: Uint8Array | null,
  createdAt: Date,
  refersTo: string | null = null,
): GroupEventPayload {
  return {
    __typename: "GroupEvent",
    expiresAt: null,
    id: groupEventId(groupId, seq),
    groupId,
    seq: Number(seq),
    kind,
    epoch,
    senderUserId,
    senderDeviceId,
    message: message ? base64(message) : null,
    serverTimestamp: createdAt.toISOString(),
    refersTo,
  };
}
