// The account store's contract: everything one device keeps (credentials, Signal and MLS state behind a generic
// key/value surface, seen envelope ids, pending plaintext, messages with what was folded into them). Written against
// promises and whole write batches so that a browser build can put IndexedDB (one readwrite transaction per batch)
// behind the same interface; the Node SDK uses SQLite (sqlite-store.ts).
import type { MessageBody, ReplyRef, RsvpAnswer } from "../content.ts";
import type { KeyValueStore } from "../signal/kv.ts";

/** What the SDK keeps about the account besides Signal state. */
export interface AccountInfo {
  server: string;
  userId: string;
  deviceId: number;
  token: string;
  username: string | null;
}

/** A message as it was sent or received, before anything was folded into it. */
export interface MessageRecord {
  messageId: string;
  conversationId: string | null;
  /** The other party (your own user id for a note to self); in a group, the sender. */
  peerUserId: string;
  /** Set for group messages: the conversation is the group. */
  groupId?: string | null;
  direction: "in" | "out";
  from: { userId: string; deviceId: number };
  sentAt: number;
  serverTimestamp: string;
  body: MessageBody;
  /** When this copy self-destructs (ISO), if it does. */
  expiresAt: string | null;
  replyTo?: ReplyRef | null;
  readAt?: string;
  deliveredAt?: string;
}

export interface Reaction {
  userId: string;
  emoji: string;
  at: string;
}

export type Tally =
  | { kind: "poll"; counts: number[]; voters: number; votes: { userId: string; choices: number[] }[] }
  | { kind: "event"; yes: number; no: number; maybe: number; answers: { userId: string; answer: RsvpAnswer }[] };

/** A message as apps see it: body is the current version, with reactions, edits and tallies folded in. */
export interface StoredMessage extends MessageRecord {
  groupId: string | null;
  replyTo: ReplyRef | null;
  reactions: Reaction[];
  /** Every version, oldest first, starting with the original; empty when never edited. */
  editHistory: { text: string; at: string }[];
  editedAt: string | null;
  tally: Tally | null;
}

/** The conversation a message belongs to: the group id, or the other party's user id. */
export const conversationKey = (m: Pick<MessageRecord, "groupId" | "peerUserId">): string => m.groupId ?? m.peerUserId;

/** Everything one atomic change may touch; applied all or nothing. Later entries win over earlier ones. */
export interface WriteBatch {
  /** null deletes the key. */
  kv?: { key: string; value: Uint8Array | null }[];
  info?: AccountInfo;
  /** Inserted; a message id already stored keeps its row (redelivery). */
  messages?: MessageRecord[];
  receipts?: { messageId: string; readAt?: string; deliveredAt?: string }[];
  /** Removes the messages and everything folded into them. */
  remove?: string[];
  /** emoji null takes the reaction back. A change older (by at) than the one stored is ignored. */
  reactions?: { messageId: string; userId: string; emoji: string | null; at: string }[];
  edits?: { messageId: string; editId: string; text: string; at: string }[];
  /** choices [] takes the vote back; older than the stored vote is ignored. */
  votes?: { pollId: string; userId: string; choices: number[]; at: string }[];
  rsvps?: { eventId: string; userId: string; answer: RsvpAnswer; at: string }[];
  seen?: string[];
  /** plaintext null clears it. */
  pending?: { envelopeId: string; plaintext: Uint8Array | null }[];
  conversations?: { peerUserId: string; conversationId: string }[];
}

export interface PageQuery {
  /** A conversation key (peer user id or group id); all conversations when absent. */
  conversation?: string;
  /** Strictly older than this message (by id) or this time (ms since the epoch). */
  before?: { messageId: string } | { at: number };
  limit: number;
}

export interface SearchQuery {
  text: string;
  conversation?: string;
  limit: number;
}

/** Like IndexedDB's transaction durability: "relaxed" may be lost on power loss (never torn, never out of order). */
export interface ApplyOptions {
  durability?: "strict" | "relaxed";
}

export interface AccountStore extends KeyValueStore {
  apply(batch: WriteBatch, opts?: ApplyOptions): Promise<void>;
  readInfo(): Promise<AccountInfo | null>;
  getMessage(messageId: string): Promise<StoredMessage | undefined>;
  /** Newest first. */
  messages(q: PageQuery): Promise<StoredMessage[]>;
  /** Full-text search over the current text of messages, newest first. */
  search(q: SearchQuery): Promise<StoredMessage[]>;
  /** Messages with a self-destruct time. */
  expiring(): Promise<{ messageId: string; peerUserId: string; expiresAt: string }[]>;
  isSeen(envelopeId: string): Promise<boolean>;
  pending(envelopeId: string): Promise<Uint8Array<ArrayBuffer> | undefined>;
  conversationWith(peerUserId: string): Promise<string | undefined>;
  peerOf(conversationId: string): Promise<string | undefined>;
  close(): Promise<void>;
}
