// A real PQXDH + Double Ratchet session set up through the server's key directory.
import { describe, expect, it } from "vitest";
import { ClaimPreKeyBundlesDocument, PreKeyStatusDocument } from "../../src/client/generated/graphql.ts";
import { registerDevice } from "../helpers/accounts.ts";
import { useServer } from "../helpers/fixture.ts";

const text = (s: string) => new Uint8Array(Buffer.from(s, "utf8"));
const str = (b: Uint8Array) => Buffer.from(b).toString("utf8");

describe("Signal sessions through the key directory", () => {
  const server = useServer();

  it("A claims B's bundle, encrypts with PQXDH, and B decrypts with its own stores; then the ratchet runs both ways", async () => {
    const alice = await registerDevice(server.url);
    const bob = await registerDevice(server.url, { oneTimeKeys: 3 });
    const { claimPreKeyBundles } = await alice.http.request(ClaimPreKeyBundlesDocument, { userId: bob.userId });
    expect(claimPreKeyBundles).toHaveLength(1);
    const bundle = claimPreKeyBundles[0];
    expect(bundle.preKeyId).not.toBeNull();
    await alice.signal.processBundle(alice.address, bundle);

    const first = await alice.signal.encrypt(alice.address, bob.address, text("hello bob"));
    expect(first.type).toBe(3); // PreKey message: carries the PQXDH set-up
    expect(str(await bob.signal.decrypt(bob.address, alice.address, first.type, first.body))).toBe("hello bob");

    const reply = await bob.signal.encrypt(bob.address, alice.address, text("hello alice"));
    expect(reply.type).toBe(2); // Whisper: the session exists on Bob's side now
    expect(str(await alice.signal.decrypt(alice.address, bob.address, reply.type, reply.body))).toBe("hello alice");

    const { preKeyStatus } = await bob.http.request(PreKeyStatusDocument);
    expect(preKeyStatus.oneTimePreKeys).toBe(2);
    expect(preKeyStatus.oneTimeKyberPreKeys).toBe(2);
  });

  it("falls back to the last-resort Kyber key and no EC one-time key once one-time keys ran out", async () => {
    const bob = await registerDevice(server.url, { oneTimeKeys: 1 });
    const claimers = await Promise.all([1, 2, 3].map(() => registerDevice(server.url, { oneTimeKeys: 0 })));
    const bundles = [];
    for (const c of claimers) {
      const { claimPreKeyBundles } = await c.http.request(ClaimPreKeyBundlesDocument, { userId: bob.userId });
      bundles.push(claimPreKeyBundles[0]);
    }
    expect(bundles[0].preKeyId).not.toBeNull();
    expect(bundles[1].preKeyId).toBeNull();
    expect(bundles[1].preKey).toBeNull();
    // The last-resort Kyber key is handed out again and again; the one-time one only once.
    expect(bundles[1].kyberPreKeyId).toBe(bundles[2].kyberPreKeyId);
    expect(bundles[0].kyberPreKeyId).not.toBe(bundles[1].kyberPreKeyId);

    for (const [i, c] of claimers.entries()) {
      await c.signal.processBundle(c.address, bundles[i]);
      const m = await c.signal.encrypt(c.address, bob.address, text(`message ${i}`));
      expect(str(await bob.signal.decrypt(bob.address, c.address, m.type, m.body))).toBe(`message ${i}`);
    }
    const { preKeyStatus } = await bob.http.request(PreKeyStatusDocument);
    expect(preKeyStatus).toMatchObject({ oneTimePreKeys: 0, oneTimeKyberPreKeys: 0, isLow: true });
  });
});
