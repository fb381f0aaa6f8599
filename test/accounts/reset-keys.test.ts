// resetDeviceKeys: the server half of re-registration. The caller comes from its token; the new keys are checked
// like at registration; the old one-time keys are gone and bundles carry the new identity.
import { describe, expect, it } from "vitest";
import { MemoryKeyValueStore } from "../../src/client/signal/kv.ts";
import { SignalDevice } from "../../src/client/signal/device.ts";
import { ClaimPreKeyBundlesDocument, DevicesDocument, PreKeyStatusDocument, ResetDeviceKeysDocument } from "../../src/client/generated/graphql.ts";
import { GraphQLRequestError } from "../../src/client/transport.ts";
import { registerDevice } from "../helpers/accounts.ts";
import { useServer } from "../helpers/fixture.ts";

describe("resetDeviceKeys", () => {
  const server = useServer();

  it("replaces identity, registration id and every pre-key of the calling device only", async () => {
    const bob = await registerDevice(server.url, { oneTimeKeys: 5 });
    const alice = await registerDevice(server.url);
    const fresh = await SignalDevice.open(new MemoryKeyValueStore());
    const keys = await fresh.registrationKeys(3);
    expect(await bob.http.request(ResetDeviceKeysDocument, { keys })).toEqual({ resetDeviceKeys: true });

    const { preKeyStatus } = await bob.http.request(PreKeyStatusDocument);
    expect(preKeyStatus).toMatchObject({ oneTimePreKeys: 3, oneTimeKyberPreKeys: 3 });
    const { devices } = await alice.http.request(DevicesDocument, { userId: bob.userId });
    expect(devices).toEqual([expect.objectContaining({ deviceId: 1, registrationId: fresh.registrationId })]);
    const [bundle] = (await alice.http.request(ClaimPreKeyBundlesDocument, { userId: bob.userId })).claimPreKeyBundles;
    expect(bundle.identityKey).toBe(keys.identityKey);
    expect(keys.oneTimePreKeys.map((k) => k.keyId)).toContain(bundle.preKeyId);
    // A session built on it reaches the new identity.
    await alice.signal.processBundle(alice.address, bundle);
    const m = await alice.signal.encrypt(alice.address, bob.address, new Uint8Array(Buffer.from("hi")));
    expect(Buffer.from(await fresh.decrypt(bob.address, alice.address, m.type, m.body)).toString()).toBe("hi");
  });

  it("needs a device token and rejects keys that do not verify", async () => {
    const fresh = await SignalDevice.open(new MemoryKeyValueStore());
    const keys = await fresh.registrationKeys(1);
    const anon = await server.http().execute(ResetDeviceKeysDocument, { keys });
    expect(anon.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");

    const bob = await registerDevice(server.url);
    const other = await SignalDevice.open(new MemoryKeyValueStore());
    const forged = { ...keys, identityKey: (await other.registrationKeys(0)).identityKey }; // signatures by another key
    const err = await bob.http.request(ResetDeviceKeysDocument, { keys: forged }).catch((e) => e);
    expect(err).toBeInstanceOf(GraphQLRequestError);
    expect(err.code).toBe("BAD_USER_INPUT");
    // Nothing changed.
    const { devices } = await bob.http.request(DevicesDocument, { userId: bob.userId });
    expect(devices[0].registrationId).toBe(bob.signal.registrationId);
  });
});
