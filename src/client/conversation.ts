// Content that changes another message (reactions, edits, poll votes, RSVPs): which of them a device accepts, the
// store rows they become, and the event the app gets, for received ones and for this device's own. Accepted only for
// a message this device holds, in the same conversation, and (edits) from its sender within the window.
import { type ActionBody, type RsvpAnswer } from "./content.ts";
import { VignetteError } from "./errors.ts";
import type { MessageStore } from "./message-store.ts";
import type { Address } from "./messaging.ts";
import { EDIT_WINDOW_MS, isEditable, mayEdit, validVote } from "./store/fold.ts";
import { conversationKey, type MessageRecord, type StoredMessage, type Tally, type WriteBatch } from "./store/types.ts";

interface ActionEventBase {
  /** The conversation: the group id, or the other party's user id. */
  conversation: string;
  from: Address;
  /** The message changed, with this change folded in. */
  message: StoredMessage;
}
export interface ReactionEvent extends ActionEventBase {
  messageId: string;
  /** null: the sender took their reaction back. */
  emoji: string | null;
}
export interface EditEvent extends ActionEventBase {
  messageId: string;
  text: string;
  at: string;
}
export interface VoteEvent extends ActionEventBase {
  pollId: string;
  choices: number[];
  tally: Extract<Tally, { kind: "poll" }>;
}
export interface RsvpEvent extends ActionEventBase {
  eventId: string;
  answer: RsvpAnswer;
  tally: Extract<Tally, { kind: "event" }>;
}

export type ActionEvent = ["reaction", ReactionEvent] | ["edit", EditEvent] | ["vote", VoteEvent] | ["rsvp", RsvpEvent];

/** Where an action came from: the message that carried it. */
export interface ActionContext {
  /** The carrying message's id (an edit's id in the history). */
  messageId: string;
  from: Address;
  serverTimestamp: string;
  /** The conversation it was sent in: a group id, or the other party's user id. */
  conversation: string;
}

export const targetOf = (b: ActionBody): string => (b.kind === "vote" ? b.pollId : b.kind === "rsvp" ? b.eventId : b.messageId);

/** Why an action on target is refused, or null when it is accepted. */
function refusal(target: MessageRecord | undefined, ctx: ActionContext, b: ActionBody): string | null {
  if (!target) return "no such message here";
  if (conversationKey(target) !== ctx.conversation) return "that message is in another conversation";
  switch (b.kind) {
    case "reaction":
      return null;
    case "edit":
      if (target.from.userId !== ctx.from.userId) return "only its sender can edit a message";
      if (!isEditable(target.body)) return "only text messages can be edited";
      return mayEdit(target, ctx.from.userId, ctx.serverTimestamp) ? null : `edits are possible for ${EDIT_WINDOW_MS / 3_600_000} hours`;
    case "vote":
      return validVote(target, b.choices) ? null : "not a poll, or choices it does not offer";
    case "rsvp":
      return target.body.kind === "event" ? null : "not an event";
  }
}

/** The rows an accepted action becomes. */
function rows(ctx: ActionContext, b: ActionBody): WriteBatch {
  const userId = ctx.from.userId;
  const at = ctx.serverTimestamp;
  switch (b.kind) {
    case "reaction":
      return { reactions: [{ messageId: b.messageId, userId, emoji: b.emoji, at }] };
    case "edit":
      return { edits: [{ messageId: b.messageId, editId: ctx.messageId, text: b.text, at }] };
    case "vote":
      return { votes: [{ pollId: b.pollId, userId, choices: b.choices, at }] };
    case "rsvp":
      return { rsvps: [{ eventId: b.eventId, userId, answer: b.answer, at }] };
  }
}

function eventOf(ctx: ActionContext, b: ActionBody, message: StoredMessage): ActionEvent {
  const base = { conversation: ctx.conversation, from: ctx.from, message };
  switch (b.kind) {
    case "reaction":
      return ["reaction", { ...base, messageId: b.messageId, emoji: b.emoji }];
    case "edit":
      return ["edit", { ...base, messageId: b.messageId, text: b.text, at: ctx.serverTimestamp }];
    case "vote":
      return ["vote", { ...base, pollId: b.pollId, choices: b.choices, tally: message.tally as VoteEvent["tally"] }];
    case "rsvp":
      return ["rsvp", { ...base, eventId: b.eventId, answer: b.answer, tally: message.tally as RsvpEvent["tally"] }];
  }
}

export interface ActionChanges {
  batch: WriteBatch;
  /** The app's event, read once the batch is stored (null if the message went away meanwhile). */
  event(): Promise<ActionEvent | null>;
}

/** A received action: its rows and event, or null when it is refused (it is then acknowledged and dropped). */
export async function receivedAction(store: MessageStore, ctx: ActionContext, b: ActionBody): Promise<ActionChanges | null> {
  if (refusal(await store.get(targetOf(b)), ctx, b)) return null;
  return { batch: rows(ctx, b), event: () => actionEvent(store, ctx, b) };
}

/** The app's event for an action already stored (null if its message went away meanwhile). */
export async function actionEvent(store: MessageStore, ctx: ActionContext, b: ActionBody): Promise<ActionEvent | null> {
  const m = await store.get(targetOf(b));
  return m ? eventOf(ctx, b, m) : null;
}

/** Sends this device's own action with send (to the target's conversation) and folds it in locally. */
export async function sendAction<R extends { messageId: string; serverTimestamp: string }>(
  store: MessageStore,
  self: Address,
  b: ActionBody,
  send: (target: StoredMessage) => Promise<R>,
): Promise<R> {
  const target = await store.get(targetOf(b));
  const conversation = target ? conversationKey(target) : "";
  const draft: ActionContext = { messageId: "", from: self, serverTimestamp: new Date().toISOString(), conversation };
  const why = refusal(target, draft, b);
  if (why) throw new VignetteError(`cannot ${b.kind === "edit" ? "edit" : `send this ${b.kind}`}: ${why}`, why.startsWith("no such") ? "NOT_FOUND" : "BAD_USER_INPUT");
  const r = await send(target!);
  await store.apply(rows({ ...draft, messageId: r.messageId, serverTimestamp: r.serverTimestamp }, b));
  return r;
}
