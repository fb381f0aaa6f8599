// Reactions, edits, poll votes and RSVPs on group messages through the SDK: sent through the group (MLS, never as
// 1:1 envelopes), folded into every member's stored message and handed over as the same events as in 1:1, with the
// same rules (only the sender edits; only offered options).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VignetteClient, type EditEvent, type ReactionEvent, type VoteEvent } from "vignette-messaging/client";
import { uniqueUsername } from "../helpers/accounts.ts";
import { record, tempDir, useSdkServer } from "../helpers/sdk.ts";
import { waitFor } from "../helpers/wait.ts";

describe("actions on group messages", () => {
  const server = useSdkServer();
  const clients: VignetteClient[] = [];
  const events = new Map<VignetteClient, { reaction: ReactionEvent[]; edit: EditEvent[]; vote: VoteEvent[] }>();
  let alice: VignetteClient, bob: VignetteClient, carol: VignetteClient;
  let groupId: string;
  const recorded = new Map<VignetteClient, ReturnType<typeof record>>();
  const received = (c: VignetteClient, text: string) =>
    waitFor(() => (recorded.get(c)!.events.groupMessage ?? []).find((m) => m.body.kind === "text" && m.body.text === text), `${text} arrives`);

  beforeAll(async () => {
    for (const name of ["alice", "bob", "carol"]) {
      const c = await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername(name) });
      const e = { reaction: [] as ReactionEvent[], edit: [] as EditEvent[], vote: [] as VoteEvent[] };
      c.on("reaction", (r) => void e.reaction.push(r));
      c.on("edit", (r) => void e.edit.push(r));
      c.on("vote", (r) => void e.vote.push(r));
      events.set(c, e);
      recorded.set(c, record(c));
      clients.push(c);
      await c.start();
    }
    [alice, bob, carol] = clients;
    groupId = (await alice.groups.create({ name: "actions", members: [bob.username!, carol.username!] })).id;
    for (const c of [bob, carol]) await waitFor(() => (recorded.get(c)!.events.groupChanged ?? []).some((e) => e.kind === "joined"), "joined");
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) await c.close();
  });

  it("a reaction reaches every other member as a reaction event and is folded into each stored copy", async () => {
    const { messageId } = await alice.groups.send(groupId, "lunch at noon?");
    await received(bob, "lunch at noon?");
    await received(carol, "lunch at noon?");
    const sent = await bob.react(messageId, "👍");
    expect(sent.messageId).toMatch(/^g:/);
    for (const c of [alice, carol]) {
      const r = await waitFor(() => events.get(c)!.reaction.find((x) => x.messageId === messageId), "the reaction event");
      expect(r).toMatchObject({ emoji: "👍", conversation: groupId, from: { userId: bob.userId } });
      expect((await c.store.get(messageId))!.reactions.map((x) => [x.userId, x.emoji])).toEqual([[bob.userId, "👍"]]);
    }
    // The reacting device folded its own reaction in at once.
    expect((await bob.store.get(messageId))!.reactions.map((x) => x.emoji)).toEqual(["👍"]);
    // Nothing else showed up as a message of its own.
    expect((recorded.get(carol)!.events.groupMessage ?? []).filter((m) => m.body.kind === "reaction")).toEqual([]);
  });

  it("the sender edits its text everywhere; another member may not", async () => {
    const { messageId } = await alice.groups.send(groupId, "meet at the statoin");
    await received(carol, "meet at the statoin");
    await received(bob, "meet at the statoin");
    await expect(bob.edit(messageId, "hijacked")).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
    await alice.edit(messageId, "meet at the station");
    for (const c of [bob, carol]) {
      await waitFor(() => events.get(c)!.edit.find((x) => x.messageId === messageId), "the edit event");
      const m = (await c.store.get(messageId))!;
      expect(m.body).toEqual({ kind: "text", text: "meet at the station" });
      expect(m.editHistory.map((h) => h.text)).toContain("meet at the statoin");
    }
  });

  it("poll votes make the same running tally on every member's device", async () => {
    const { messageId } = await alice.groups.send(groupId, { kind: "poll", question: "where?", options: ["park", "cafe"] });
    for (const c of [bob, carol]) await waitFor(async () => c.store.get(messageId), "the poll arrives");
    await expect(carol.vote(messageId, 7)).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
    await bob.vote(messageId, 1);
    await carol.vote(messageId, 1);
    for (const c of [alice, bob, carol]) {
      await waitFor(async () => ((await c.store.get(messageId))!.tally as { voters: number }).voters === 2, "two voters");
      expect((await c.store.get(messageId))!.tally).toMatchObject({ kind: "poll", counts: [0, 2] });
    }
    expect(events.get(alice)!.vote.filter((v) => v.pollId === messageId).map((v) => v.from.userId).sort()).toEqual([bob.userId, carol.userId].sort());
  });
});
