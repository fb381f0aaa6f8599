// Pure rules of the local history: what text of a message is searchable, how reactions, edits, votes and RSVPs fold
// into the message they refer to, and which of those changes a receiver accepts. Store-independent, unit-tested.
import { MAX_SNIPPET_LENGTH, type MessageBody, type RsvpAnswer } from "../content.ts";
import type { MessageRecord, Reaction, StoredMessage, Tally } from "./types.ts";

/** How long after sending the sender may still edit a message (as Signal: 24 hours). */
export const EDIT_WINDOW_MS = 24 * 60 * 60 * 1000;

/** The words of a message that search finds (of its current version). */
export function searchText(body: MessageBody): string {
  switch (body.kind) {
    case "text":
    case "noteToSelf":
      return body.text;
    case "location":
      return body.label ?? "";
    case "contact":
      return [body.name, body.username, body.email].filter(Boolean).join(" ");
    case "poll":
      return [body.question, ...body.options].join(" ");
    case "event":
      return [body.title, body.location].filter(Boolean).join(" ");
    case "image":
    case "video":
    case "voice":
    case "file":
      return [body.caption, body.attachment.fileName].filter(Boolean).join(" ");
    default:
      return "";
  }
}

/** The start of a message's text for a quote, cut at a code point boundary. */
export function snippetOf(body: MessageBody): string {
  const text = searchText(body) || `[${body.kind}]`;
  return [...text].slice(0, MAX_SNIPPET_LENGTH / 2).join("");
}

export const isEditable = (body: MessageBody) => body.kind === "text" || body.kind === "noteToSelf";

/**
 * Whether an edit from `editorUserId`, stamped by the server at `editAt`, may change `target`: only its sender may,
 * only a text, and only within the window (server timestamps, which the sender cannot forge).
 */
export function mayEdit(target: MessageRecord, editorUserId: string, editAt: string): boolean {
  if (target.from.userId !== editorUserId || !isEditable(target.body)) return false;
  const age = Date.parse(editAt) - Date.parse(target.serverTimestamp);
  return age >= 0 && age <= EDIT_WINDOW_MS;
}

/** A vote counts only for a known poll, with choices in range, and at most one choice unless the poll allows more. */
export function validVote(target: MessageRecord, choices: number[]): boolean {
  const poll = target.body;
  if (poll.kind !== "poll") return false;
  if (choices.some((c) => c >= poll.options.length)) return false;
  return poll.multiple === true || choices.length <= 1;
}

export interface FoldRows {
  reactions: Reaction[];
  edits: { text: string; at: string; editId: string }[];
  votes: { userId: string; choices: number[] }[];
  rsvps: { userId: string; answer: RsvpAnswer }[];
}

function tallyOf(body: MessageBody, rows: FoldRows): Tally | null {
  if (body.kind === "poll") {
    const counts = body.options.map(() => 0);
    const votes = rows.votes.filter((v) => v.choices.length > 0);
    for (const v of votes) for (const c of v.choices) if (c < counts.length) counts[c]++;
    return { kind: "poll", counts, voters: votes.length, votes };
  }
  if (body.kind === "event") {
    const t = { kind: "event" as const, yes: 0, no: 0, maybe: 0, answers: rows.rsvps };
    for (const r of rows.rsvps) t[r.answer]++;
    return t;
  }
  return null;
}

/** The message with its changes applied: current text, edit history, reactions (one per user), tallies. */
export function fold(record: MessageRecord, rows: FoldRows): StoredMessage {
  const edits = [...rows.edits].sort((a, b) => a.at.localeCompare(b.at) || a.editId.localeCompare(b.editId));
  let body = record.body;
  let editHistory: StoredMessage["editHistory"] = [];
  if (edits.length && isEditable(body)) {
    editHistory = [{ text: (body as { text: string }).text, at: record.serverTimestamp }, ...edits.map((e) => ({ text: e.text, at: e.at }))];
    body = { ...body, text: edits[edits.length - 1].text } as MessageBody;
  }
  return {
    ...record,
    groupId: record.groupId ?? null,
    replyTo: record.replyTo ?? null,
    body,
    reactions: rows.reactions.filter((r) => r.emoji !== "").sort((a, b) => a.at.localeCompare(b.at)),
    editHistory,
    editedAt: editHistory.length ? editHistory[editHistory.length - 1].at : null,
    tally: tallyOf(record.body, rows),
  };
}

/** Turns what a user typed into an FTS5 query: every word must match, the last one as a prefix. */
export function ftsQuery(text: string): string | null {
  const words = text.normalize("NFKC").match(/[\p{L}\p{N}_]+/gu)?.slice(0, 16);
  if (!words?.length) return null;
  return words.map((w, i) => `"${w}"${i === words.length - 1 ? "*" : ""}`).join(" ");
}
