// End to end with real SDK clients (real libsignal, account directories on disk) against a real server
// (PostgreSQL + Redis when DATABASE_URL / REDIS_URL are set): conversations both ways, multi-device fan-out and sync
// copies, offline catch-up in order, at-least-once delivery across a crash, device-set repair, re-registration,
// deletion, self-destruct, pre-key upkeep; then nothing of it may be readable in the database.
import { IdentityKeyPair, KyberPreKeyRecord, PreKeyRecord, SignedPreKeyRecord } from "@signalapp/libsignal-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountDirectory, VignetteClient } from "vignette-messaging/client";
import { ClaimPreKeyBundlesDocument, PreKeyStatusDocument } from "../../src/client/generated/graphql.ts";
import { uniqueUsername } from "../helpers/accounts.ts";
import { scanDatabase } from "../helpers/scan.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { record, removeTempDirs, tempDir, texts, type Recorded } from "../helpers/sdk.ts";
import { sleep, waitFor } from "../helpers/wait.ts";

describe("VignetteClient end to end", () => {
  let server: TestServer;
  const clients: VignetteClient[] = [];
  const plaintexts: string[] = [];
  const rec = new Map<VignetteClient, Recorded>();
  let alice: VignetteClient, alice2: VignetteClient, bob: VignetteClient, bob2: VignetteClient;
  let bobDir: string;

  const started = async (c: VignetteClient) => {
    clients.push(c);
    rec.set(c, record(c));
    await c.start();
    return c;
  };
  const r = (c: VignetteClient) => rec.get(c)!;
  const say = (text: string) => (plaintexts.push(text), text);

  beforeAll(async () => {
    server = await startServer({ PREKEY_LOW_WATER_MARK: "20" });
    alice = await started(await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername("alice") }));
    const { token } = await alice.createLinkToken();
    alice2 = await started(await VignetteClient.link({ server: server.url, dir: await tempDir(), linkToken: token, deviceName: "laptop" }));
    bobDir = await tempDir();
    bob = await started(await VignetteClient.register({ server: server.url, dir: bobDir, username: uniqueUsername("bob") }));
    const link = await bob.createLinkToken();
    bob2 = await started(await VignetteClient.link({ server: server.url, dir: await tempDir(), linkToken: link.token }));
  }, 180_000); // four registrations of 200 fsynced pre-keys each: slow on a loaded machine, still bounded

  afterAll(async () => {
    for (const c of clients) await c.close();
    await server?.close();
    await removeTempDirs();
  });

  it("registration publishes 100 one-time EC and 100 Kyber pre-keys; a linked device belongs to the same account", async () => {
    const { preKeyStatus } = await bob.http.request(PreKeyStatusDocument);
    expect(preKeyStatus).toMatchObject({ oneTimePreKeys: 100, oneTimeKyberPreKeys: 100 });
    expect(alice2.userId).toBe(alice.userId);
    expect(alice2.deviceId).toBe(2);
    expect(alice2.username).toBe(alice.username);
    expect((await alice.devices()).map((d) => d.deviceId)).toEqual([1, 2]);
  });

  it("Alice and Bob exchange messages both ways; both Bob devices get them; each side's other device gets sync copies", async () => {
    await alice.send(bob.username!, say("hello bob, from alice"));
    await waitFor(() => texts(r(bob)).includes("hello bob, from alice") && texts(r(bob2)).includes("hello bob, from alice"), "both bob devices");
    await waitFor(() => r(alice2).messages.find((m) => m.isSync), "alice2's sync copy");
    const sync = r(alice2).messages.find((m) => m.isSync)!;
    expect(sync).toMatchObject({ peerUserId: bob.userId, direction: "out", body: { kind: "text", text: "hello bob, from alice" } });
    const got = r(bob).messages[0];
    expect(got).toMatchObject({ from: { userId: alice.userId, deviceId: 1 }, direction: "in", isSync: false, peerUserId: alice.userId });

    await bob2.send(alice.userId, say("hi alice, bob on his second device"));
    await waitFor(
      () => [alice, alice2].every((c) => texts(r(c)).includes("hi alice, bob on his second device")),
      "both alice devices",
    );
    await waitFor(() => r(bob).messages.some((m) => m.isSync && m.peerUserId === alice.userId), "bob's sync copy");
    // Note to Self goes to this account's other devices only.
    await alice.noteToSelf(say("note to self: buy oat milk"));
    await waitFor(() => r(alice2).messages.some((m) => m.body.kind === "noteToSelf"), "alice2 gets the note");
    expect(r(alice2).messages.find((m) => m.body.kind === "noteToSelf")).toMatchObject({ peerUserId: alice.userId, isSync: true });
    // The local history holds both directions on every device, newest first.
    expect((await bob.messages(alice.username!)).map((m) => m.direction)).toEqual(["out", "in"]);
  });

  it("message kinds beyond text travel inside the encryption", async () => {
    await alice.send(bob.userId, { kind: "location", latitude: 48.8584, longitude: 2.2945, label: say("Tour Eiffel rendezvous") });
    await alice.send(bob.userId, { kind: "poll", question: say("Which pizza tonight?"), options: ["margherita", "funghi"] });
    await waitFor(() => r(bob).messages.some((m) => m.body.kind === "poll"), "the poll");
    expect(r(bob).messages.map((m) => m.body.kind)).toEqual(expect.arrayContaining(["location", "poll"]));
  });

  it("receipts, typing and presence arrive as events", async () => {
    // Two messages read in one call: the server coalesces them into one receipt, the app still gets one event each.
    const read = ["location", "poll"].map((k) => r(bob).messages.find((x) => x.body.kind === k)!.messageId);
    await bob.markRead(read);
    const reads = () => (r(alice).events.receipt ?? []).filter((e) => e.kind === "READ" && read.includes(e.messageId));
    await waitFor(() => reads().length === 2, "both read receipts");
    expect(reads().map((e) => e.messageId).sort()).toEqual([...read].sort());
    const stop = await bob.watchTyping(alice.userId);
    await alice.setTyping(bob.userId, true);
    await waitFor(() => r(bob).events.typing?.some((t) => t.userId === alice.userId && t.isTyping), "the typing event");
    stop();
    const stopPresence = await alice.watchPresence([bob.userId]);
    await waitFor(() => r(alice).events.presence?.some((p) => p.userId === bob.userId && p.online), "bob online");
    stopPresence();
  });

  it("Bob offline receives everything in order when back, each message once across restarts", async () => {
    await bob.close();
    const seenBefore = r(bob).messages.length;
    const batch = Array.from({ length: 6 }, (_, i) => say(`offline message ${i} for bob`));
    for (const t of batch) await alice.send(bob.userId, t);
    await waitFor(() => batch.every((t) => texts(r(bob2)).includes(t)), "bob2 (online) gets them");

    const back = await VignetteClient.open(bobDir);
    const got = record(back);
    clients.push(back);
    rec.set(back, got);
    await back.start();
    await waitFor(() => got.messages.length >= batch.length, "bob's queued messages");
    await sleep(300); // room for any (wrong) duplicate to show up
    expect(texts(got)).toEqual(batch);
    expect(seenBefore).toBeGreaterThan(0);
    bob = back;
  });

  it("delivers at least once to the app: a handler that throws leaves the envelope queued, and after a restart it comes once", async () => {
    const text = say("must survive a crashing handler");
    let failOnce = true;
    bob.on("message", () => {
      if (failOnce) {
        failOnce = false;
        throw new Error("app crashed while handling");
      }
    });
    await alice.send(bob.userId, text);
    await waitFor(() => r(bob).events.error?.some((e) => /app crashed/.test(e.message)), "the handler failure");
    await bob.close();
    const back = await VignetteClient.open(bobDir);
    const got = record(back);
    clients.push(back);
    rec.set(back, got);
    await back.start();
    await waitFor(() => texts(got).includes(text), "the redelivered message");
    await sleep(300);
    expect(texts(got).filter((t) => t === text)).toHaveLength(1);
    bob = back;
  });

  it("a sender with an outdated device list is told MISMATCHED_DEVICES, refetches and retries by itself", async () => {
    // Carol never starts, so nothing refreshes her cached view of Bob's devices but the server's refusal.
    const carol = await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername("carol") });
    expect((await carol.send(bob.userId, say("carol's first"))).attempts).toBe(1);
    const link = await bob.createLinkToken();
    const bob3 = await started(await VignetteClient.link({ server: server.url, dir: await tempDir(), linkToken: link.token }));
    const second = await carol.send(bob.userId, say("carol's second, to three devices"));
    expect(second.attempts).toBe(2);
    await waitFor(() => [bob, bob2, bob3].every((c) => texts(r(c)).includes("carol's second, to three devices")), "all three");
    // The linked device talks too.
    await bob3.send(carol.userId, say("bob3 answers carol"));
    await started(carol);
    await waitFor(() => texts(r(carol)).includes("bob3 answers carol"), "carol hears bob's linked device");
    // A linked device neither links nor removes others (the SDK says so before the server would).
    await expect(bob3.createLinkToken()).rejects.toMatchObject({ code: "FORBIDDEN", message: expect.stringMatching(/primary device/) });
    await expect(bob3.deactivateDevice(1)).rejects.toMatchObject({ code: "FORBIDDEN" });
    await bob3.deactivateDevice(bob3.deviceId);
    expect((await bob.devices()).map((d) => d.deviceId)).toEqual([1, 2]);
  });

  it("Bob re-registers with a new identity: Alice sees a safety-number change and the conversation recovers both ways", async () => {
    const before = await alice.safetyNumbers(bob.userId);
    const bobsView = await bob.safetyNumbers(alice.userId);
    // libsignal's Fingerprint gives both sides the same 60 digits.
    expect(before.find((s) => s.deviceId === 1)!.safetyNumber).toBe(bobsView.find((s) => s.deviceId === 1)!.safetyNumber);
    expect(before[0].safetyNumber).toMatch(/^\d{60}$/);

    // Bob's phone is offline when he re-registers: what was queued for his old identity can never be decrypted. The
    // SDK reports it and moves on instead of blocking the queue behind it.
    await bob.close();
    await alice.send(bob.userId, say("queued for bob's old identity"));
    const reborn = await VignetteClient.open(bobDir);
    clients.push(reborn);
    rec.set(reborn, record(reborn));
    await reborn.resetIdentity();
    await reborn.start();
    bob = reborn;
    await waitFor(() => r(bob).events.undecryptable?.length, "the old envelope reported undecryptable");
    expect(r(bob).events.undecryptable![0].from).toEqual({ userId: alice.userId, deviceId: 1 });
    await alice.send(bob.userId, say("after bob re-registered"));
    await waitFor(() => texts(r(bob)).includes("after bob re-registered"), "bob (new identity) decrypts");
    const change = r(alice).events.safetyNumberChanged?.find((e) => e.userId === bob.userId && e.deviceId === 1);
    expect(change).toBeDefined();
    expect(change!.safetyNumber).not.toBe(before.find((s) => s.deviceId === 1)!.safetyNumber);
    expect((await bob.safetyNumbers(alice.userId)).find((s) => s.deviceId === 1)!.safetyNumber).toBe(change!.safetyNumber);

    await bob.send(alice.userId, say("bob is back"));
    await waitFor(() => [alice, alice2].every((c) => texts(r(c)).includes("bob is back")), "alice hears bob again");
  });

  it("a deletion for everyone removes the message on every client", async () => {
    const text = say("a message alice regrets");
    const sent = await alice.send(bob.userId, text);
    await waitFor(() => [bob, bob2].every((c) => texts(r(c)).includes(text)), "delivery");
    expect((await bob.messages()).some((m) => m.messageId === sent.messageId)).toBe(true);
    await alice.deleteMessage(sent.messageId, true);
    await waitFor(() => [bob, bob2].every((c) => r(c).events.deleted?.some((d) => d.messageId === sent.messageId)), "deletion events");
    for (const c of [alice, bob, bob2]) expect((await c.messages()).some((m) => m.messageId === sent.messageId)).toBe(false);
  });

  it("a self-destructing message disappears from the clients when its timer runs out", async () => {
    const text = say("this message self-destructs");
    const sent = await alice.send(bob.userId, text, { expiresInSeconds: 2 });
    await waitFor(() => texts(r(bob)).includes(text), "delivery");
    const got = r(bob).messages.find((m) => m.messageId === sent.messageId)!;
    expect(got.expiresAt).not.toBeNull();
    expect((await bob.messages()).some((m) => m.messageId === sent.messageId)).toBe(true);
    await waitFor(() => r(bob).events.expired?.some((e) => e.messageId === sent.messageId), "expiry on bob", 15_000);
    await waitFor(() => r(alice).events.expired?.some((e) => e.messageId === sent.messageId), "expiry on alice", 15_000);
    for (const c of [alice, bob]) expect((await c.messages()).some((m) => m.messageId === sent.messageId)).toBe(false);
  });

  it("tops up one-time pre-keys when the server reports them low", async () => {
    const claimer = await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername("claimer") });
    clients.push(claimer);
    // Claim down to 19, one under the low-water mark of 20: the server says so and the client refills.
    const before = (await alice2.http.request(PreKeyStatusDocument)).preKeyStatus;
    expect(before.isLow).toBe(false);
    const claims = Math.min(before.oneTimePreKeys, before.oneTimeKyberPreKeys) - 19;
    for (let i = 0; i < claims; i++) await claimer.http.request(ClaimPreKeyBundlesDocument, { userId: alice2.userId, deviceId: alice2.deviceId });
    await waitFor(() => r(alice2).events.preKeysToppedUp?.length, "the top-up");
    const { preKeyStatus } = await alice2.http.request(PreKeyStatusDocument);
    expect(preKeyStatus).toMatchObject({ oneTimePreKeys: 100, oneTimeKyberPreKeys: 100 });
  });

  it("rotates the signed pre-key and the last-resort Kyber key on schedule", async () => {
    const dave = await VignetteClient.register({
      server: server.url,
      dir: await tempDir(),
      username: uniqueUsername("dave"),
      preKeyRotationIntervalMs: 400,
    });
    clients.push(dave);
    const bundle = async () => (await alice.http.request(ClaimPreKeyBundlesDocument, { userId: dave.userId })).claimPreKeyBundles[0];
    const first = await bundle();
    const daveEvents = record(dave);
    await dave.start();
    await waitFor(async () => (await bundle()).signedPreKeyId !== first.signedPreKeyId, "a rotated signed pre-key");
    // Replaced keys are retired locally once old: after five rotations, fewer than five signed keys are kept.
    const current = await waitFor(async () => {
      const b = await bundle();
      return b.signedPreKeyId >= first.signedPreKeyId + 5 && b;
    }, "five rotations");
    const lastResort = (await dave.directory.kv.list("self/lastResortKyber/")).map((k) => Number(k.split("/")[2]));
    expect(Math.max(...lastResort)).toBeGreaterThan(Math.min(...lastResort));
    expect(lastResort.length).toBeLessThan(5);
    expect(daveEvents.events.error ?? []).toEqual([]);
    const kept = (await dave.directory.kv.list("signed/")).map((k) => Number(k.split("/")[1]));
    expect(kept).toContain(current.signedPreKeyId);
    expect(kept.length).toBeLessThan(5);
    expect(kept).not.toContain(first.signedPreKeyId);
    // Sessions built on the new keys work.
    await alice.send(dave.userId, say("to dave after rotation"));
    await waitFor(async () => (await dave.messages()).some((m) => m.body.kind === "text" && m.body.text === "to dave after rotation"), "dave");
  });

  it("the database holds none of the plaintexts and none of the clients' private keys", async () => {
    const secrets: { label: string; bytes: Uint8Array }[] = plaintexts.map((t) => ({ label: `plaintext "${t}"`, bytes: Buffer.from(t, "utf8") }));
    for (const c of clients) {
      // Closed clients closed their database too: read each directory through a connection of its own.
      const directory = await AccountDirectory.open(c.directory.dir);
      const kv = directory.kv;
      const id = IdentityKeyPair.deserialize((await kv.get("self/identity"))!);
      secrets.push({ label: `identity private key of ${c.userId}.${c.deviceId}`, bytes: id.privateKey.serialize() });
      for (const k of await kv.list("prekey/")) secrets.push({ label: k, bytes: PreKeyRecord.deserialize((await kv.get(k))!).privateKey().serialize() });
      for (const k of await kv.list("signed/")) secrets.push({ label: k, bytes: SignedPreKeyRecord.deserialize((await kv.get(k))!).privateKey().serialize() });
      for (const k of await kv.list("kyber/")) secrets.push({ label: k, bytes: KyberPreKeyRecord.deserialize((await kv.get(k))!).secretKey().serialize() });
      await directory.close();
    }
    expect(secrets.length).toBeGreaterThan(500);
    const { found, columnsScanned, tables } = await scanDatabase(server, secrets);
    expect(tables).toEqual(expect.arrayContaining(["devices", "one_time_pre_keys", "inbox_items", "messages"]));
    expect(columnsScanned).toBeGreaterThan(10);
    expect(found).toEqual([]);
    // The scanner does find what is there: public identity keys are stored, by design.
    const control = await scanDatabase(server, [{ label: "bob's public identity key", bytes: bob.signal.identity.publicKey.serialize() }]);
    expect(control.found).toEqual(["bob's public identity key in devices.identity_key"]);
  });
});
