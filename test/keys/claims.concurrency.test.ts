// Many claimers at once never receive the same one-time key.
import { describe, expect, it } from "vitest";
import { ClaimPreKeyBundlesDocument, PreKeyStatusDocument, UploadPreKeysDocument } from "../../src/client/generated/graphql.ts";
import { HttpTransport } from "../../src/client/transport.ts";
import { registerDevice } from "../helpers/accounts.ts";
import { useServer } from "../helpers/fixture.ts";

describe("concurrent bundle claims", () => {
  const server = useServer({ DATABASE_POOL_SIZE: "20" });

  it("60 parallel claims for 40 one-time keys: 40 distinct keys, then none, never one twice", async () => {
    const bob = await registerDevice(server.url, { oneTimeKeys: 0 });
    const more = await bob.signal.oneTimeKeys(40);
    await bob.http.request(UploadPreKeysDocument, { input: more });
    const claimer = await registerDevice(server.url, { oneTimeKeys: 0 });
    const claims = await Promise.all(
      Array.from({ length: 60 }, () =>
        new HttpTransport(server.url, claimer.token).request(ClaimPreKeyBundlesDocument, { userId: bob.userId }),
      ),
    );
    const bundles = claims.map((c) => c.claimPreKeyBundles[0]);
    const ec = bundles.map((b) => b.preKeyId).filter((id): id is number => id != null);
    const kyber = bundles.map((b) => b.kyberPreKeyId);
    expect(ec).toHaveLength(40);
    expect(new Set(ec).size).toBe(40);
    const oneTimeKyber = new Set(more.oneTimeKyberPreKeys.map((k) => k.keyId));
    const handedOneTime = kyber.filter((id) => oneTimeKyber.has(id));
    expect(handedOneTime).toHaveLength(40);
    expect(new Set(handedOneTime).size).toBe(40);
    // The other 20 got the last-resort Kyber key and no EC one-time key.
    expect(kyber.filter((id) => !oneTimeKyber.has(id)).every((id) => id === kyber.find((k) => !oneTimeKyber.has(k)))).toBe(true);
    const { preKeyStatus } = await bob.http.request(PreKeyStatusDocument);
    expect(preKeyStatus).toMatchObject({ oneTimePreKeys: 0, oneTimeKyberPreKeys: 0 });
  });
});
