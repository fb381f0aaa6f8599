// Call signaling end to end with real SDK clients (real libsignal sessions, live-only sends through a real server):
// a callee with two devices rings on both; answered / declined elsewhere; busy; glare; hangup from either side; the ring
// timeout leaves exactly one missed-call message; an offer sent while the callee is offline never arrives later;
// afterwards no SDP and no ICE candidate is anywhere in the database.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VignetteClient, type ClientEvents } from "vignette-messaging/client";
import { uniqueUsername } from "../helpers/accounts.ts";
import { scanDatabase } from "../helpers/scan.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { record, removeTempDirs, tempDir, type Recorded } from "../helpers/sdk.ts";
import { waitFor } from "../helpers/wait.ts";

interface CallLog {
  offers: ClientEvents["callOffer"][];
  answers: ClientEvents["callAnswer"][];
  ice: ClientEvents["callIce"][];
  ended: ClientEvents["callEnded"][];
}

describe("client.calls signaling", () => {
  let server: TestServer;
  const clients: VignetteClient[] = [];
  const logs = new Map<VignetteClient, CallLog>();
  const recs = new Map<VignetteClient, Recorded>();
  // Every SDP and candidate that travelled: none may be readable in the database afterwards.
  const secrets: string[] = [];
  let alice: VignetteClient, bob: VignetteClient, bob2: VignetteClient, carol: VignetteClient, dave: VignetteClient;

  const sdp = (who: string) => {
    const s = `v=0\r\no=${who}-${randomBytes(6).toString("hex")} 1 1 IN IP4 127.0.0.1\r\ns=-\r\n`;
    secrets.push(s);
    return s;
  };
  const candidate = () => {
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    const c = { candidate: `candidate:1 1 udp 2122260223 10.${port % 250}.7.9 ${port} typ host`, sdpMid: "0", sdpMLineIndex: 0 };
    secrets.push(c.candidate);
    return c;
  };
  const log = (c: VignetteClient) => logs.get(c)!;
  const endedWith = (c: VignetteClient, callId: string) => log(c).ended.find((e) => e.callId === callId)?.reason;
  const started = async (c: VignetteClient, start = true) => {
    clients.push(c);
    recs.set(c, record(c));
    const l: CallLog = { offers: [], answers: [], ice: [], ended: [] };
    c.on("callOffer", (e) => void l.offers.push(e));
    c.on("callAnswer", (e) => void l.answers.push(e));
    c.on("callIce", (e) => void l.ice.push(e));
    c.on("callEnded", (e) => void l.ended.push(e));
    logs.set(c, l);
    if (start) await c.start();
    return c;
  };
  const register = async (name: string, ringTimeoutMs?: number) =>
    VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername(name), calls: { ringTimeoutMs } });
  // Rows written since `since`: earlier queue items may still be acknowledged (batched) while a call runs.
  const rowsSince = async (since: Date) => ({
    messages: await server.app.prisma.message.count({ where: { createdAt: { gte: since } } }),
    items: await server.app.prisma.inboxItem.count({ where: { createdAt: { gte: since } } }),
  });

  beforeAll(async () => {
    server = await startServer();
    alice = await started(await register("alice"));
    bob = await started(await register("bob"));
    const { token } = await bob.createLinkToken();
    bob2 = await started(await VignetteClient.link({ server: server.url, dir: await tempDir(), linkToken: token }));
    carol = await started(await register("carol"));
    dave = await started(await register("dave", 1_500));
    // start() leaves work behind (own-device reconcile, key packages) whose device_list items are acknowledged a
    // moment later: wait for a quiet inbox so the first test's row count sees only what signaling does.
    await waitFor(async () => (await server.app.prisma.inboxItem.count()) === 0, "start-up inbox items acknowledged");
  }, 180_000);

  afterAll(async () => {
    for (const c of clients) await c.close();
    await server?.close();
    await removeTempDirs();
  });

  it("both callee devices ring; one answers, the other ends answeredElsewhere; ICE both ways; the callee hangs up", async () => {
    const start = new Date();
    const offerSdp = sdp("alice");
    const { callId } = await alice.calls.offer(bob.username!, { sdp: offerSdp, video: true });
    await waitFor(() => log(bob).offers.length === 1 && log(bob2).offers.length === 1, "both bob devices ring");
    for (const c of [bob, bob2]) {
      expect(log(c).offers[0]).toEqual({ callId, from: { userId: alice.userId, deviceId: 1 }, sdp: offerSdp, video: true });
    }
    const early = candidate();
    await alice.calls.ice(callId, [early]);
    await waitFor(() => log(bob2).ice.length === 1, "early ICE rings along");

    const answerSdp = sdp("bob2");
    await bob2.calls.answer(callId, { sdp: answerSdp });
    await waitFor(() => log(alice).answers.length === 1, "alice gets the answer");
    expect(log(alice).answers[0]).toEqual({ callId, from: { userId: bob.userId, deviceId: 2 }, sdp: answerSdp });
    await waitFor(() => endedWith(bob, callId), "bob's first device stops ringing");
    expect(log(bob).ended).toEqual([{ callId, peerUserId: alice.userId, reason: "answeredElsewhere", local: false }]);

    const fromBob = candidate();
    await bob2.calls.ice(callId, [fromBob]);
    await waitFor(() => log(alice).ice.length === 1, "alice gets bob2's ICE");
    expect(log(alice).ice[0].candidates[0]).toMatchObject(fromBob);
    const fromAlice = candidate();
    await alice.calls.ice(callId, [fromAlice]);
    await waitFor(() => log(bob2).ice.length === 2, "bob2 gets alice's ICE");
    expect(log(bob2).ice.map((i) => i.candidates[0].candidate)).toEqual([early.candidate, fromAlice.candidate]);
    // bob's first device had the early candidate while ringing; after it left the call its copies were dropped.
    expect(log(bob).ice.map((i) => i.candidates[0].candidate)).toEqual([early.candidate]);

    await bob2.calls.hangup(callId);
    await waitFor(() => endedWith(alice, callId), "alice sees the hangup");
    expect(log(alice).ended.at(-1)).toEqual({ callId, peerUserId: bob.userId, reason: "hangup", local: false });
    expect(log(bob2).ended.at(-1)).toMatchObject({ callId, reason: "hangup", local: true });
    // Signaling stored nothing at all.
    expect(await rowsSince(start)).toEqual({ messages: 0, items: 0 });
    expect(alice.calls.current()).toBeNull();
  });

  it("decline: the caller ends with declined, the callee's other device with declinedElsewhere", async () => {
    const { callId } = await alice.calls.offer(bob.userId, { sdp: sdp("alice"), video: false });
    await waitFor(() => log(bob).offers.some((o) => o.callId === callId) && log(bob2).offers.some((o) => o.callId === callId), "ringing");
    await bob.calls.decline(callId);
    await waitFor(() => endedWith(alice, callId) && endedWith(bob2, callId), "declined everywhere");
    expect(endedWith(alice, callId)).toBe("declined");
    expect(endedWith(bob2, callId)).toBe("declinedElsewhere");
    expect(endedWith(bob, callId)).toBe("declined");
  });

  it("busy: a callee in a call answers another caller with busy; then the caller hangs up", async () => {
    const { callId } = await alice.calls.offer(bob.userId, { sdp: sdp("alice"), video: false });
    await waitFor(() => log(bob).offers.some((o) => o.callId === callId), "bob rings");
    await bob.calls.answer(callId, { sdp: sdp("bob") });
    await waitFor(() => endedWith(bob2, callId) === "answeredElsewhere" && log(alice).answers.some((a) => a.callId === callId), "connected");

    const second = await carol.calls.offer(bob.userId, { sdp: sdp("carol"), video: false });
    await waitFor(() => endedWith(carol, second.callId), "carol hears busy");
    expect(endedWith(carol, second.callId)).toBe("busy");
    // bob2 was free and rang, until bob's busy reached it as a sync copy.
    await waitFor(() => endedWith(bob2, second.callId), "bob2 stops ringing");
    expect(endedWith(bob2, second.callId)).toBe("busy");
    expect(log(bob).offers.some((o) => o.callId === second.callId)).toBe(false);
    expect(bob.calls.current()).toMatchObject({ callId, phase: "connected" });
    // An offer while already in a call is refused locally.
    await expect(alice.calls.offer(carol.userId, { sdp: sdp("alice"), video: false })).rejects.toThrow(/already in a call/);

    await alice.calls.hangup(callId);
    await waitFor(() => endedWith(bob, callId), "bob sees alice hang up");
    expect(endedWith(bob, callId)).toBe("hangup");
    expect(bob.calls.current()).toBeNull();
  });

  it("glare: alice and carol call each other at once; on both sides the call with the larger id survives", async () => {
    const [a, c] = await Promise.all([
      alice.calls.offer(carol.userId, { sdp: sdp("alice"), video: false }),
      carol.calls.offer(alice.userId, { sdp: sdp("carol"), video: false }),
    ]);
    const [winner, loser] = a.callId > c.callId ? [alice, carol] : [carol, alice];
    const [won, lost] = a.callId > c.callId ? [a.callId, c.callId] : [c.callId, a.callId];
    await waitFor(() => endedWith(loser, lost) && log(loser).offers.some((o) => o.callId === won), "the loser yields");
    expect(log(loser).ended.find((e) => e.callId === lost)).toMatchObject({ reason: "glare", local: true });
    expect(loser.calls.current()).toMatchObject({ callId: won, direction: "incoming", phase: "ringing" });
    await loser.calls.answer(won, { sdp: sdp("loser") });
    await waitFor(() => log(winner).answers.some((x) => x.callId === won), "the winner gets the answer");
    expect(log(winner).offers.some((o) => o.callId === lost)).toBe(false);
    expect(endedWith(winner, lost)).toBeUndefined();
    await winner.calls.hangup(won);
    await waitFor(() => endedWith(loser, won) === "hangup", "hung up");
  });

  it("nobody answers: the ring timeout ends the call everywhere and leaves exactly one missed-call message", async () => {
    const calls = async () => server.app.prisma.message.count({ where: { messageType: "CALL" } });
    const before = await calls();
    const { callId } = await dave.calls.offer(bob.userId, { sdp: sdp("dave"), video: true });
    await waitFor(() => log(bob).offers.some((o) => o.callId === callId) && log(bob2).offers.some((o) => o.callId === callId), "ringing");
    await waitFor(() => endedWith(dave, callId), "dave's ring timeout", 10_000);
    expect(log(dave).ended.at(-1)).toEqual({ callId, peerUserId: bob.userId, reason: "timeout", local: true });
    await waitFor(() => endedWith(bob, callId) && endedWith(bob2, callId), "bob's devices stop ringing");
    expect([endedWith(bob, callId), endedWith(bob2, callId)]).toEqual(["timeout", "timeout"]);
    const missed = (c: VignetteClient) => recs.get(c)!.messages.filter((m) => m.body.kind === "missedCall" && m.body.callId === callId);
    await waitFor(() => missed(bob).length && missed(bob2).length, "the missed-call message");
    await new Promise((r) => setTimeout(r, 500));
    expect(missed(bob)).toHaveLength(1);
    expect(missed(bob2)).toHaveLength(1);
    expect(missed(bob)[0]).toMatchObject({ from: { userId: dave.userId }, body: { kind: "missedCall", callId, video: true } });
    expect(missed(bob2)[0].messageId).toBe(missed(bob)[0].messageId);
    expect(await calls()).toBe(before + 1);
  });

  it("an offer sent while the callee is offline is never delivered later (only the missed-call message is)", async () => {
    const frank = await started(await register("frank"), false);
    const { callId } = await alice.calls.offer(frank.username!, { sdp: sdp("alice"), video: false });
    await alice.calls.ice(callId, [candidate()]);
    await alice.calls.hangup(callId);
    await frank.start();
    const missed = () => recs.get(frank)!.messages.filter((m) => m.body.kind === "missedCall");
    await waitFor(() => missed().length === 1, "frank's missed call");
    await new Promise((r) => setTimeout(r, 500));
    expect(missed()[0].body).toEqual({ kind: "missedCall", callId, video: false });
    expect(log(frank).offers).toEqual([]);
    expect(log(frank).ice).toEqual([]);
    expect(log(frank).ended).toEqual([]);
  });

  it("the server's tables hold no SDP and no ICE candidate", async () => {
    expect(secrets.length).toBeGreaterThan(10);
    const scan = await scanDatabase(
      server,
      secrets.map((s, i) => ({ label: `signal ${i}`, bytes: Buffer.from(s, "utf8") })),
    );
    expect(scan.columnsScanned).toBeGreaterThan(20);
    expect(scan.found).toEqual([]);
    // Nor any ciphertext of them: the only CALL messages stored are the two missed calls.
    expect(await server.app.prisma.message.count({ where: { messageType: "CALL" } })).toBe(2);
    for (const c of clients) expect(recs.get(c)!.events.error ?? []).toEqual([]);
  });
});
