// Pure rules of the SDK's content and history: decoding of the new kinds (and of kinds from the future), who may edit
// within which window, which votes count, the FTS query built from what a user typed, and quote snippets.
import { describe, expect, it } from "vitest";
import { ContentError, decodeContent, encodeContent, pad, type MessageBody } from "../../src/client/content.ts";
import { EDIT_WINDOW_MS, ftsQuery, mayEdit, snippetOf, validVote } from "../../src/client/store/fold.ts";
import type { MessageRecord } from "../../src/client/store/types.ts";

const raw = (body: unknown) => pad(Buffer.from(JSON.stringify({ v: 1, sentAt: 1, body })));
const ID = "00000000-0000-4000-8000-000000000001";

describe("content kinds", () => {
  it("round-trips reactions, edits, votes, RSVPs and replies", () => {
    const bodies = [
      { kind: "reaction", messageId: ID, emoji: "👍🏽" },
      { kind: "reaction", messageId: ID, emoji: null },
      { kind: "edit", messageId: ID, text: "fixed" },
      { kind: "vote", pollId: ID, choices: [0, 2] },
      { kind: "rsvp", eventId: ID, answer: "maybe" },
    ] satisfies MessageBody[];
    for (const body of bodies) expect(decodeContent(encodeContent({ sentAt: 1, body })).body).toEqual(body);
    const reply = decodeContent(encodeContent({ sentAt: 1, body: { kind: "text", text: "agreed" }, replyTo: { messageId: ID, snippet: "shall we?" } }));
    expect(reply.replyTo).toEqual({ messageId: ID, snippet: "shall we?" });
  });

  it("rejects malformed actions, normalises votes, and drops an oversized quote rather than the message", () => {
    for (const bad of [
      { kind: "reaction", messageId: ID, emoji: "x".repeat(33) },
      { kind: "reaction", messageId: ID, emoji: "" },
      { kind: "reaction", messageId: "", emoji: "👍" },
      { kind: "edit", messageId: ID },
      { kind: "vote", pollId: ID, choices: [-1] },
      { kind: "vote", pollId: ID, choices: [0.5] },
      { kind: "vote", pollId: ID, choices: "0" },
      { kind: "rsvp", eventId: ID, answer: "perhaps" },
    ])
      expect(() => decodeContent(raw(bad)), JSON.stringify(bad)).toThrow(ContentError);
    expect(decodeContent(raw({ kind: "vote", pollId: ID, choices: [2, 0, 2] })).body).toEqual({ kind: "vote", pollId: ID, choices: [0, 2] });
    const c = decodeContent(pad(Buffer.from(JSON.stringify({ v: 1, sentAt: 1, body: { kind: "text", text: "hi" }, replyTo: { messageId: ID, snippet: "x".repeat(201) } }))));
    expect(c.replyTo).toBeUndefined();
  });

  it("keeps a kind from a newer client as unsupported, but not a body that only pretends to be one", () => {
    expect(decodeContent(raw({ kind: "sticker", packId: "p", stickerId: 3 })).body).toEqual({
      kind: "unsupported",
      originalKind: "sticker",
      raw: { kind: "sticker", packId: "p", stickerId: 3 },
    });
    expect(() => decodeContent(raw({ kind: "unsupported", originalKind: "x", raw: {} }))).toThrow(ContentError);
    expect(() => decodeContent(raw({ kind: 7 }))).toThrow(ContentError);
    expect(() => decodeContent(raw({ kind: "k".repeat(65) }))).toThrow(ContentError);
    expect(() => decodeContent(raw([]))).toThrow(ContentError);
  });
});

describe("history rules", () => {
  const base: MessageRecord = {
    messageId: ID,
    conversationId: null,
    peerUserId: "peer",
    direction: "in",
    from: { userId: "peer", deviceId: 1 },
    sentAt: 0,
    serverTimestamp: "2026-11-01T00:00:00.000Z",
    body: { kind: "text", text: "hello" },
    expiresAt: null,
  };
  const later = (ms: number) => new Date(Date.parse(base.serverTimestamp) + ms).toISOString();

  it("lets only the sender edit a text, within the window measured in server time", () => {
    expect(mayEdit(base, "peer", later(1000))).toBe(true);
    expect(mayEdit(base, "peer", later(EDIT_WINDOW_MS))).toBe(true);
    expect(mayEdit(base, "peer", later(EDIT_WINDOW_MS + 1))).toBe(false);
    expect(mayEdit(base, "peer", later(-1000))).toBe(false);
    expect(mayEdit(base, "someone else", later(1000))).toBe(false);
    expect(mayEdit({ ...base, body: { kind: "location", latitude: 1, longitude: 2 } }, "peer", later(1000))).toBe(false);
  });

  it("counts a vote only for a poll, with offered options, one unless multiple", () => {
    const poll = { ...base, body: { kind: "poll" as const, question: "?", options: ["a", "b", "c"] } };
    expect(validVote(poll, [1])).toBe(true);
    expect(validVote(poll, [])).toBe(true);
    expect(validVote(poll, [0, 1])).toBe(false);
    expect(validVote(poll, [3])).toBe(false);
    expect(validVote({ ...poll, body: { ...poll.body, multiple: true } }, [0, 1, 2])).toBe(true);
    expect(validVote(base, [0])).toBe(false);
  });

  it("builds FTS5 queries of quoted words only, the last as a prefix", () => {
    expect(ftsQuery("brown fox")).toBe('"brown" "fox"*');
    expect(ftsQuery('fox" OR 1=1 --')).toBe('"fox" "OR" "1" "1"*');
    expect(ftsQuery("  *** ")).toBeNull();
    expect(ftsQuery("Crème")).toBe('"Crème"*');
  });

  it("cuts quote snippets at code points", () => {
    expect(snippetOf({ kind: "text", text: "🙂".repeat(150) })).toBe("🙂".repeat(100));
    expect(snippetOf({ kind: "location", latitude: 0, longitude: 0 })).toBe("[location]");
  });
});
