// A real WebRTC connection set up only through our server: two headless Chromium pages, each driven by its own SDK
// client in this process (page.exposeFunction / page.evaluate bridge). Offer, answer and ICE candidates travel as
// Signal-encrypted live-only messages; both peer connections use iceTransportPolicy "relay" with the credentials
// from turnServers, so every byte of the data channel goes through a real coturn (use-auth-secret) on loopback.
// Then the same credentials, once expired, are refused by coturn; and the database holds no SDP and no candidate.
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VignetteClient, type IceServer } from "vignette-messaging/client";
import { uniqueUsername } from "../helpers/accounts.ts";
import { hasChromium } from "../helpers/browser.ts";
import { launchChromium } from "../helpers/chromium.ts";
import { hasCoturn, startCoturn, type Coturn } from "../helpers/coturn.ts";
import { scanDatabase } from "../helpers/scan.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { removeTempDirs, tempDir } from "../helpers/sdk.ts";
import { waitFor } from "../helpers/wait.ts";
import { storageIndependentDone } from "../helpers/passes.ts";

const PAGE_JS = fileURLToPath(new URL("./webrtc-page.js", import.meta.url));
const TTL = 12;

interface Side {
  client: VignetteClient;
  page: Page;
  iceServers: IceServer[];
  /** Candidates the page gathered before the call id was known; sent once it is. */
  setCallId(id: string): Promise<void>;
  errors: unknown[];
}

type Peer = {
  setup(s: unknown, initiator: boolean): void;
  offer(): Promise<string>;
  acceptOffer(sdp: string): Promise<string>;
  acceptAnswer(sdp: string): Promise<void>;
  addIce(c: unknown[]): Promise<void>;
  isOpen(): boolean;
  send(b: number[]): void;
  received: number[][];
  selectedPair(): Promise<{ local: string; remote: string; relayProtocol: string; bytesSent: number } | null>;
  gatherOnly(s: unknown): Promise<{ relays: string[]; errors: number[] }>;
  close(): void;
};
declare const peer: Peer;

describe.skipIf(!hasChromium() || !hasCoturn() || storageIndependentDone)("WebRTC through coturn, signaled through Vignette", () => {
  let turn: Coturn;
  let server: TestServer;
  let browser: Browser;
  let alice: Side, bob: Side;
  const clients: VignetteClient[] = [];
  const traveled: string[] = [];

  async function side(name: string): Promise<Side> {
    const client = await VignetteClient.register({ server: server.url, dir: await tempDir(), username: uniqueUsername(name) });
    clients.push(client);
    await client.start();
    const page = await (await browser.newContext()).newPage();
    const errors: unknown[] = [];
    client.on("error", (e) => void errors.push(e));
    page.on("pageerror", (e) => void errors.push(e));
    let callId: string | null = null;
    const early: unknown[] = [];
    // The page's onicecandidate lands here: the SDK carries it, encrypted, to the other side.
    await page.exposeFunction("vgSendIce", async (json: string) => {
      const c = JSON.parse(json);
      traveled.push(c.candidate);
      if (callId) await client.calls.ice(callId, [c]).catch((e) => errors.push(e));
      else early.push(c);
    });
    await page.goto("about:blank");
    await page.addScriptTag({ path: PAGE_JS });
    const s: Side = {
      client,
      page,
      iceServers: [],
      errors,
      async setCallId(id) {
        callId = id;
        if (early.length) await client.calls.ice(id, early.splice(0) as never);
      },
    };
    client.on("callIce", (e) => page.evaluate((cs) => peer.addIce(cs), e.candidates as unknown[]));
    return s;
  }

  beforeAll(async () => {
    turn = await startCoturn();
    server = await startServer({ TURN_URLS: `${turn.url}?transport=udp`, TURN_SECRET: turn.secret, TURN_TTL_SECONDS: String(TTL) });
    browser = await launchChromium();
    alice = await side("alice");
    bob = await side("bob");
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    for (const c of clients) await c.close();
    await server?.close();
    await turn?.stop();
    await removeTempDirs();
  });

  it("connects two Chromium pages over TURN relays; a data channel carries bytes both ways", async () => {
    alice.iceServers = await alice.client.calls.turnServers();
    bob.iceServers = await bob.client.calls.turnServers();
    expect(alice.iceServers[0].username).toMatch(new RegExp(`^\\d+:${alice.client.userId}$`));

    bob.client.on("callOffer", async (c) => {
      traveled.push(c.sdp);
      await bob.setCallId(c.callId);
      await bob.page.evaluate((s) => peer.setup(s, false), bob.iceServers as unknown);
      const sdp = await bob.page.evaluate((o) => peer.acceptOffer(o), c.sdp);
      traveled.push(sdp);
      await bob.client.calls.answer(c.callId, { sdp });
    });
    alice.client.on("callAnswer", (a) => alice.page.evaluate((sdp) => peer.acceptAnswer(sdp), a.sdp));

    await alice.page.evaluate((s) => peer.setup(s, true), alice.iceServers as unknown);
    const offerSdp = await alice.page.evaluate(() => peer.offer());
    const { callId } = await alice.client.calls.offer(bob.client.userId, { sdp: offerSdp, video: false });
    await alice.setCallId(callId);

    await waitFor(async () => (await alice.page.evaluate(() => peer.isOpen())) && (await bob.page.evaluate(() => peer.isOpen())), "the data channel opens", 30_000);
    const there = Array.from({ length: 1000 }, (_, i) => (i * 37 + 11) % 256);
    const back = Array.from({ length: 700 }, (_, i) => (i * 101 + 5) % 256);
    await alice.page.evaluate((b) => peer.send(b), there);
    await bob.page.evaluate((b) => peer.send(b), back);
    await waitFor(async () => (await bob.page.evaluate(() => peer.received.length)) > 0 && (await alice.page.evaluate(() => peer.received.length)) > 0, "bytes both ways", 15_000);
    expect(await bob.page.evaluate(() => peer.received)).toEqual([there]);
    expect(await alice.page.evaluate(() => peer.received)).toEqual([back]);

    // Both ends of the pair in use are relay candidates: the media path is through coturn.
    for (const s of [alice, bob]) {
      expect(await s.page.evaluate(() => peer.selectedPair())).toMatchObject({ local: "relay", remote: "relay", relayProtocol: "udp" });
    }
    // coturn allocated for each user, under the credential turnServers gave that user.
    for (const s of [alice, bob]) {
      const user = s.iceServers[0].username;
      expect(turn.logs.some((l) => l.includes(`user <${user}>`) && /ALLOCATE processed, success/.test(l)), turn.logs.slice(-20).join("\n")).toBe(true);
    }

    const ended = new Promise((resolve) => bob.client.on("callEnded", (e) => resolve(e.reason)));
    await alice.client.calls.hangup(callId);
    expect(await ended).toBe("hangup");
    for (const s of [alice, bob]) await s.page.evaluate(() => peer.close());
    expect([...alice.errors, ...bob.errors]).toEqual([]);
  });

  it("coturn refuses the same credentials once they have expired", async () => {
    const expiresAt = Date.parse(alice.iceServers[0].expiresAt);
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 1_500));
    const { relays, errors } = await alice.page.evaluate((s) => peer.gatherOnly(s), alice.iceServers as unknown);
    expect(relays).toEqual([]);
    expect(errors).toContain(401);
    // A fresh credential from turnServers works again.
    const fresh = await alice.client.calls.turnServers();
    const ok = await alice.page.evaluate((s) => peer.gatherOnly(s), fresh as unknown);
    expect(ok.relays.length).toBeGreaterThan(0);
  }, 60_000);

  it("the database holds no SDP and no ICE candidate of the call", async () => {
    expect(traveled.length).toBeGreaterThan(3);
    const needles = traveled.flatMap((t, i) => {
      // Whole SDPs, and their most telling lines (the DTLS fingerprint, the ICE password).
      const lines = t.split(/\r?\n/).filter((l) => /^a=(fingerprint|ice-pwd):/.test(l));
      return [t, ...lines].map((s, j) => ({ label: `signal ${i}.${j}`, bytes: Buffer.from(s, "utf8") }));
    });
    const scan = await scanDatabase(server, needles);
    expect(scan.found).toEqual([]);
  });
});
