// Malformed, unsigned or duplicated keys are refused with BAD_USER_INPUT / CONFLICT and change nothing stored.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  PreKeyStatusDocument,
  RegisterAccountDocument,
  RotateLastResortKyberPreKeyDocument,
  RotateSignedPreKeyDocument,
  UploadPreKeysDocument,
} from "../../src/client/generated/graphql.ts";
import { MemoryKeyValueStore } from "../../src/client/signal/kv.ts";
import { SignalDevice, type KeysInputFields } from "../../src/client/signal/device.ts";
import { HttpTransport } from "../../src/client/transport.ts";
import { registerDevice, uniqueUsername, type TestDevice } from "../helpers/accounts.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { snapshotTables } from "../helpers/snapshot.ts";
import { b64 } from "../../src/client/base64.ts";

const bytes = (s: string) => new Uint8Array(Buffer.from(s, "base64"));
const truncate = (s: string, n = 5) => b64(bytes(s).slice(0, bytes(s).length - n));
const flip = (s: string) => {
  const b = bytes(s);
  b[b.length - 1] ^= 0xff;
  return b64(b);
};

describe("key validation", () => {
  let server: TestServer;
  let alice: TestDevice;
  let other: SignalDevice; // a second identity whose signatures must not verify for Alice
  let good: KeysInputFields;

  beforeAll(async () => {
    server = await startServer();
    alice = await registerDevice(server.url);
    other = await SignalDevice.open(new MemoryKeyValueStore());
    const fresh = await SignalDevice.open(new MemoryKeyValueStore());
    good = await fresh.registrationKeys(2);
  });
  afterAll(() => server.close());

  async function expectRefused(run: () => Promise<{ errors?: { extensions?: { code?: string } }[] }>, code: string) {
    const before = await snapshotTables(server.app.prisma);
    const r = await run();
    expect(r.errors?.[0].extensions?.code).toBe(code);
    expect(await snapshotTables(server.app.prisma)).toEqual(before);
  }

  const register = (keys: KeysInputFields) => () =>
    new HttpTransport(server.url).execute(RegisterAccountDocument, { input: { username: uniqueUsername(), keys } });

  it.each([
    ["a truncated identity key", (k: KeysInputFields) => ({ ...k, identityKey: truncate(k.identityKey, 1) })],
    ["an identity key of the wrong type byte", (k: KeysInputFields) => ({ ...k, identityKey: b64(Uint8Array.from([9, ...bytes(k.identityKey).slice(1)])) })],
    ["a signed pre-key with a broken signature", (k: KeysInputFields) => ({ ...k, signedPreKey: { ...k.signedPreKey, signature: flip(k.signedPreKey.signature) } })],
    ["a signed pre-key that is not a key", (k: KeysInputFields) => ({ ...k, signedPreKey: { ...k.signedPreKey, publicKey: truncate(k.signedPreKey.publicKey) } })],
    ["a Kyber key signed by nobody", (k: KeysInputFields) => ({ ...k, lastResortKyberPreKey: { ...k.lastResortKyberPreKey, signature: flip(k.lastResortKyberPreKey.signature) } })],
    ["an EC key where a Kyber key belongs", (k: KeysInputFields) => ({ ...k, lastResortKyberPreKey: { ...k.signedPreKey } })],
    ["a truncated Kyber key", (k: KeysInputFields) => ({ ...k, lastResortKyberPreKey: { ...k.lastResortKyberPreKey, publicKey: truncate(k.lastResortKyberPreKey.publicKey, 100) } })],
    ["an out-of-range registration id", (k: KeysInputFields) => ({ ...k, registrationId: 0x4000 })],
    ["a negative key id", (k: KeysInputFields) => ({ ...k, signedPreKey: { ...k.signedPreKey, keyId: -1 } })],
    ["duplicate one-time key ids", (k: KeysInputFields) => ({ ...k, oneTimePreKeys: [k.oneTimePreKeys[0], { ...k.oneTimePreKeys[1], keyId: k.oneTimePreKeys[0].keyId }] })],
    ["a broken one-time Kyber signature", (k: KeysInputFields) => ({ ...k, oneTimeKyberPreKeys: [{ ...k.oneTimeKyberPreKeys[0], signature: flip(k.oneTimeKyberPreKeys[0].signature) }] })],
  ])("registration with %s is refused and stores nothing", async (_name, mutate) => {
    await expectRefused(register(mutate(good)), "BAD_USER_INPUT");
  });

  it("refuses invalid base64 before any resolver runs", async () => {
    await expectRefused(register({ ...good, identityKey: "not base64!" }), "BAD_USER_INPUT");
  });

  it("refuses an upload of more than 100 keys of a kind", async () => {
    const many = await other.oneTimeKeys(101);
    await expectRefused(() => alice.http.execute(UploadPreKeysDocument, { input: { oneTimePreKeys: many.oneTimePreKeys } }), "BAD_USER_INPUT");
  });

  it("refuses one-time Kyber keys signed by another identity", async () => {
    const foreign = await other.oneTimeKeys(2);
    await expectRefused(
      () => alice.http.execute(UploadPreKeysDocument, { input: { oneTimeKyberPreKeys: foreign.oneTimeKyberPreKeys } }),
      "BAD_USER_INPUT",
    );
  });

  it("refuses a key id the device already holds, as a whole batch", async () => {
    const more = await alice.signal.oneTimeKeys(3);
    await alice.http.request(UploadPreKeysDocument, { input: { oneTimePreKeys: more.oneTimePreKeys.slice(0, 1) } });
    await expectRefused(
      () => alice.http.execute(UploadPreKeysDocument, { input: { oneTimePreKeys: more.oneTimePreKeys } }),
      "CONFLICT",
    );
  });

  it("refuses rotations signed by another identity, and accepts Alice's own", async () => {
    const foreignSigned = await other.rotateSignedPreKey();
    await expectRefused(() => alice.http.execute(RotateSignedPreKeyDocument, { key: foreignSigned }), "BAD_USER_INPUT");
    const foreignKyber = await other.rotateLastResortKyberPreKey();
    await expectRefused(() => alice.http.execute(RotateLastResortKyberPreKeyDocument, { key: foreignKyber }), "BAD_USER_INPUT");
    expect((await alice.http.request(RotateSignedPreKeyDocument, { key: await alice.signal.rotateSignedPreKey() })).rotateSignedPreKey).toBe(true);
    const kyber = await alice.signal.rotateLastResortKyberPreKey();
    expect((await alice.http.request(RotateLastResortKyberPreKeyDocument, { key: kyber })).rotateLastResortKyberPreKey).toBe(true);
  });

  it("accepts a valid upload and counts it", async () => {
    const before = (await alice.http.request(PreKeyStatusDocument)).preKeyStatus;
    const more = await alice.signal.oneTimeKeys(4);
    const { uploadPreKeys } = await alice.http.request(UploadPreKeysDocument, { input: more });
    expect(uploadPreKeys.oneTimePreKeys).toBe(before.oneTimePreKeys + 4);
    expect(uploadPreKeys.oneTimeKyberPreKeys).toBe(before.oneTimeKyberPreKeys + 4);
  });
});
