// Content kinds between real SDK clients (1:1, real libsignal, real server): replies, reactions, edits, poll votes,
// RSVPs and kinds from a newer client, each with its event and folded into the stored message on every device of
// both sides (including the sender's other device, from its sync copy); and the refusals a receiver applies.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VignetteClient, type ClientEvents } from "vignette-messaging/client";
import { uniqueUsername } from "../helpers/accounts.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { record, removeTempDirs, tempDir, type Recorded } from "../helpers/sdk.ts";
import { waitFor } from "../helpers/wait.ts";

describe("content kinds in a 1:1 conversation", () => {
  let server: TestServer;
  let alice: VignetteClient, alice2: VignetteClient, bob: VignetteClient;
  const rec = new Map<VignetteClient, Recorded & { more: { [K in keyof ClientEvents]?: ClientEvents[K][] } }>();

  const started = async (c: VignetteClient) => {
    const r = Object.assign(record(c), { more: {} as { [K in keyof ClientEvents]?: ClientEvents[K][] } });
    for (const k of ["reaction", "edit", "vote", "rsvp", "unsupported"] as const) c.on(k, (e) => void ((r.more[k] ??= []) as unknown[]).push(e));
    rec.set(c, r);
    await c.start();
    return c;
  };
  const ev = <K extends keyof ClientEvents>(c: VignetteClient, k: K) => (rec.get(c)!.more[k] ?? []) as ClientEvents[K][];
  /** Sends text from a to b and waits until b (and a's other device) have it. */
  const exchange = async (from: VignetteClient, to: VignetteClient, text: string) => {
    const r = await from.send(to.userId, text);
    await waitFor(async () => (await to.store.get(r.messageId)) && (await alice2.store.get(r.messageId)), `"${text}" everywhere`);
    return r.messageId;
  };
  const stored = (c: VignetteClient, id: string) => c.store.get(id).then((m) => m!);

  beforeAll(async () => {
    server = await startServer();
    alice = await started(await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername("alice") }));
    const { token } = await alice.createLinkToken();
    alice2 = await started(await VignetteClient.link({ server: server.url, dir: await tempDir(), linkToken: token }));
    bob = await started(await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername("bob") }));
  }, 120_000);
  afterAll(async () => {
    for (const c of [alice, alice2, bob]) await c?.close();
    await server?.close();
    await removeTempDirs();
  });

  it("a reply quotes the message's id and the start of its text", async () => {
    const question = await exchange(alice, bob, "Shall we meet at the station at nine?");
    const reply = await bob.send(alice.username!, "agreed", { replyTo: question });
    await waitFor(() => rec.get(alice)!.messages.some((m) => m.messageId === reply.messageId), "the reply");
    const got = rec.get(alice)!.messages.find((m) => m.messageId === reply.messageId)!;
    expect(got.replyTo).toEqual({ messageId: question, snippet: "Shall we meet at the station at nine?" });
    expect((await stored(bob, reply.messageId)).replyTo).toEqual(got.replyTo);
    await expect(bob.send(alice.userId, "to nothing", { replyTo: "00000000-0000-4000-8000-000000000000" })).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("reactions: one per user, replaceable and removable, on every device of both sides", async () => {
    const id = await exchange(alice, bob, "I passed the exam!");
    await bob.react(id, "🎉");
    await waitFor(() => ev(alice, "reaction").some((e) => e.messageId === id && e.emoji === "🎉"), "alice sees bob's reaction");
    const e = ev(alice, "reaction").find((x) => x.messageId === id)!;
    expect(e).toMatchObject({ from: { userId: bob.userId }, conversation: bob.userId });
    expect(e.message.reactions.map((r) => r.emoji)).toEqual(["🎉"]);
    await bob.react(id, "❤️");
    await alice.react(id, "😊");
    await waitFor(async () => (await stored(alice2, id)).reactions.length === 2 && (await stored(alice2, id)).reactions.some((r) => r.emoji === "❤️"), "alice2");
    for (const c of [alice, alice2, bob]) {
      await waitFor(async () => (await stored(c, id)).reactions.length === 2, "two reactions");
      const rs = (await stored(c, id)).reactions.map((r) => [r.userId, r.emoji]).sort();
      expect(rs).toEqual([[alice.userId, "😊"], [bob.userId, "❤️"]].sort());
    }
    await bob.react(id, null);
    await waitFor(() => ev(alice, "reaction").some((x) => x.messageId === id && x.emoji === null), "the removal");
    expect((await alice.messages(bob.userId, { limit: 10 })).find((m) => m.messageId === id)!.reactions.map((r) => r.emoji)).toEqual(["😊"]);
    await expect(bob.react("00000000-0000-4000-8000-000000000000", "👍")).rejects.toMatchObject({ code: "NOT_FOUND" });
    // What a receiver would refuse is refused before sending: an emoji longer than one, an empty one.
    await expect(bob.react(id, "👍".repeat(40))).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
    await expect(bob.react(id, "")).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
    await expect(bob.send(alice.userId, { kind: "poll", question: "one option?", options: ["only"] })).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
  });

  it("edits: the sender only, the current text in messages() and search, the history kept by receivers", async () => {
    const id = await exchange(alice, bob, "see you at teh cafe");
    await alice.edit(id, "see you at the cafe");
    await waitFor(() => ev(bob, "edit").some((e) => e.messageId === id), "bob's edit event");
    expect(ev(bob, "edit").find((e) => e.messageId === id)).toMatchObject({ text: "see you at the cafe", from: { userId: alice.userId } });
    for (const c of [bob, alice2, alice]) {
      await waitFor(async () => (await stored(c, id)).editHistory.length === 2, "the edit folded in");
      const m = await stored(c, id);
      expect(m.body).toEqual({ kind: "text", text: "see you at the cafe" });
      expect(m.editHistory.map((h) => h.text)).toEqual(["see you at teh cafe", "see you at the cafe"]);
      expect(m.editedAt).not.toBeNull();
    }
    expect((await bob.search("cafe")).map((m) => m.messageId)).toContain(id);
    expect((await bob.search("teh")).map((m) => m.messageId)).not.toContain(id);
    // Bob may not edit Alice's message: his SDK refuses, and a forged edit from him is ignored by Alice's devices.
    await expect(bob.edit(id, "bob was here")).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
    await bob["sender"].send(alice.userId, { kind: "edit", messageId: id, text: "forged by bob" });
    const marker = await exchange(bob, alice, "after the forged edit");
    expect(marker).toBeTruthy();
    expect((await stored(alice, id)).body).toEqual({ kind: "text", text: "see you at the cafe" });
    expect(ev(alice, "edit").filter((e) => e.messageId === id)).toEqual([]);
    // Only texts are editable.
    const poll = await alice.send(bob.userId, { kind: "poll", question: "?", options: ["a", "b"] });
    await expect(alice.edit(poll.messageId, "x")).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
  });

  it("poll votes: a running tally, changeable, single choice unless the poll allows several", async () => {
    const single = await alice.send(bob.userId, { kind: "poll", question: "Pizza or ramen?", options: ["pizza", "ramen"] });
    const multi = await alice.send(bob.userId, { kind: "poll", question: "Which days?", options: ["Mon", "Tue", "Wed"], multiple: true });
    await waitFor(async () => (await bob.store.get(multi.messageId)) && (await alice2.store.get(multi.messageId)), "the polls");
    await bob.vote(single.messageId, 0);
    await alice.vote(single.messageId, 1);
    await waitFor(() => ev(alice, "vote").some((e) => e.pollId === single.messageId), "alice's vote event");
    expect(ev(alice, "vote").find((e) => e.pollId === single.messageId)).toMatchObject({ choices: [0], from: { userId: bob.userId } });
    await bob.vote(single.messageId, 1); // changed his mind
    const counts = async (c: VignetteClient, id: string) => JSON.stringify(((await stored(c, id)).tally as { counts: number[] }).counts);
    for (const c of [alice, alice2, bob]) {
      await waitFor(async () => (await counts(c, single.messageId)) === "[0,2]", "the changed vote on every device");
      expect((await stored(c, single.messageId)).tally).toMatchObject({ kind: "poll", counts: [0, 2], voters: 2 });
    }
    await expect(bob.vote(single.messageId, [0, 1])).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
    await expect(bob.vote(single.messageId, 5)).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
    await bob.vote(multi.messageId, [0, 2]);
    await waitFor(async () => (await counts(alice, multi.messageId)) === "[1,0,1]", "the multiple-choice vote");
    expect((await stored(alice, multi.messageId)).tally).toMatchObject({ counts: [1, 0, 1], voters: 1 });
    await bob.vote(multi.messageId, []); // taken back
    await waitFor(async () => ((await stored(alice, multi.messageId)).tally as { voters: number }).voters === 0, "retracted");
  });

  it("event RSVPs: yes, no, maybe with a tally", async () => {
    const party = await alice.send(bob.userId, { kind: "event", title: "Birthday", startsAt: "2026-12-24T18:00:00Z" });
    await waitFor(async () => (await bob.store.get(party.messageId)) && (await alice2.store.get(party.messageId)), "the event");
    await bob.rsvp(party.messageId, "maybe");
    await alice.rsvp(party.messageId, "yes");
    await waitFor(() => ev(alice, "rsvp").some((e) => e.eventId === party.messageId && e.answer === "maybe"), "rsvp event");
    await bob.rsvp(party.messageId, "yes");
    for (const c of [alice, alice2, bob])
      await waitFor(async () => JSON.stringify((await stored(c, party.messageId)).tally).includes('"yes":2'), "two yes");
    expect((await stored(alice2, party.messageId)).tally).toMatchObject({ kind: "event", yes: 2, no: 0, maybe: 0 });
    const text = await exchange(alice, bob, "not an event");
    await expect(bob.rsvp(text, "no")).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
  });

  it("a kind from a newer client is kept and surfaced as unsupported, not dropped", async () => {
    const sticker = { kind: "sticker", packId: "cats", stickerId: 7 } as never;
    const r = await bob["sender"].send(alice.userId, sticker);
    await waitFor(() => ev(alice, "unsupported").some((m) => m.messageId === r.messageId), "the unsupported event");
    const m = await stored(alice, r.messageId);
    expect(m.body).toEqual({ kind: "unsupported", originalKind: "sticker", raw: { kind: "sticker", packId: "cats", stickerId: 7 } });
    expect((await alice.messages(bob.userId, { limit: 5 })).map((x) => x.messageId)).toContain(r.messageId);
    expect(rec.get(alice)!.events.undecryptable ?? []).toEqual([]);
  });

  it("pages the conversation newest first with folded content, and a deletion takes reactions with it", async () => {
    const all = await alice.messages(bob.username!, { limit: 1000 });
    expect(all.length).toBeGreaterThan(8);
    const page1 = await alice.messages(bob.username!, { limit: 4 });
    const page2 = await alice.messages(bob.username!, { limit: 4, before: page1[3].messageId });
    expect([...page1, ...page2].map((m) => m.messageId)).toEqual(all.slice(0, 8).map((m) => m.messageId));
    const reacted = all.find((m) => m.reactions.length > 0)!;
    await alice.deleteMessage(reacted.messageId, true);
    await waitFor(async () => !(await bob.store.get(reacted.messageId)), "deleted on bob");
    expect((await bob.messages(alice.userId, { limit: 1000 })).some((m) => m.messageId === reacted.messageId)).toBe(false);
    expect(rec.get(bob)!.events.error ?? []).toEqual([]);
  });
});
