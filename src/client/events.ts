// The events a VignetteClient emits to the app, and the shape of a received message.
import type { CallEvent } from "./calls/machine.ts";
import type { EditEvent, ReactionEvent, RsvpEvent, VoteEvent } from "./conversation.ts";
import type { GroupEvents } from "./groups.ts";
import type { Address } from "./messaging.ts";
import type { StoredMessage } from "./store/types.ts";

type CallEventOf<T extends CallEvent["type"]> = Omit<Extract<CallEvent, { type: T }>, "type">;

export interface ReceivedMessage extends StoredMessage {
  envelopeId: string;
  /** A copy of a message this account sent from another of its devices. */
  isSync: boolean;
}

export interface ClientEvents extends Record<string, unknown>, GroupEvents {
  message: ReceivedMessage;
  /** A 1:1 message from someone you never wrote to or accepted (also raised as "message"): client.acceptRequest(). */
  messageRequest: { userId: string; message: ReceivedMessage };
  /** A content kind from a newer client: stored as it came (body.kind "unsupported"), shown in messages(). */
  unsupported: ReceivedMessage;
  reaction: ReactionEvent;
  edit: EditEvent;
  vote: VoteEvent;
  rsvp: RsvpEvent;
  receipt: { messageId: string; conversationId: string; userId: string; kind: "DELIVERED" | "READ"; at: string };
  deleted: { messageId: string; conversationId: string; byUserId: string };
  expired: { messageId: string; peerUserId: string };
  typing: { conversationId: string; userId: string; deviceId: number | null; isTyping: boolean };
  presence: { userId: string; online: boolean; lastSeenAt: string | null };
  safetyNumberChanged: { userId: string; deviceId: number; safetyNumber: string };
  deviceListChanged: { userId: string };
  preKeysToppedUp: { oneTimePreKeys: number; oneTimeKyberPreKeys: number };
  undecryptable: { envelopeId: string; from: Address; reason: string };
  callOffer: CallEventOf<"callOffer">;
  callAnswer: CallEventOf<"callAnswer">;
  callIce: CallEventOf<"callIce">;
  callEnded: CallEventOf<"callEnded">;
  error: Error;
}
