// Generates a device's Signal key material, saves the private halves in its stores, and returns the public halves
// in the shape the server's KeysInput / UploadPreKeysInput want (base64 Bytes).
import { IdentityKeyPair, KEMKeyPair, KyberPreKeyRecord, PreKeyRecord, PrivateKey, SignedPreKeyRecord } from "@signalapp/libsignal-client";
import { randomInt } from "node:crypto";
import { b64 } from "../base64.ts";
import type { SignalStores } from "./stores.ts";

export interface PublicPreKey {
  keyId: number;
  publicKey: string;
}
export interface PublicSignedPreKey extends PublicPreKey {
  signature: string;
}

export function newIdentity(): { identity: IdentityKeyPair; registrationId: number } {
  return { identity: IdentityKeyPair.generate(), registrationId: randomInt(1, 0x3fff) };
}

export async function newSignedPreKey(stores: SignalStores, identity: IdentityKeyPair, keyId: number): Promise<PublicSignedPreKey> {
  const key = PrivateKey.generate();
  const signature = identity.privateKey.sign(key.getPublicKey().serialize());
  await stores.signedPreKey.saveSignedPreKey(keyId, SignedPreKeyRecord.new(keyId, Date.now(), key.getPublicKey(), key, signature));
  return { keyId, publicKey: b64(key.getPublicKey().serialize()), signature: b64(signature) };
}

export async function newKyberPreKey(stores: SignalStores, identity: IdentityKeyPair, keyId: number): Promise<PublicSignedPreKey> {
  const pair = KEMKeyPair.generate();
  const signature = identity.privateKey.sign(pair.getPublicKey().serialize());
  await stores.kyberPreKey.saveKyberPreKey(keyId, KyberPreKeyRecord.new(keyId, Date.now(), pair, signature));
  return { keyId, publicKey: b64(pair.getPublicKey().serialize()), signature: b64(signature) };
}

export async function newOneTimePreKeys(stores: SignalStores, firstId: number, count: number): Promise<PublicPreKey[]> {
  const out: PublicPreKey[] = [];
  for (let keyId = firstId; keyId < firstId + count; keyId++) {
    const key = PrivateKey.generate();
    await stores.preKey.savePreKey(keyId, PreKeyRecord.new(keyId, key.getPublicKey(), key));
    out.push({ keyId, publicKey: b64(key.getPublicKey().serialize()) });
  }
  return out;
}

export async function newOneTimeKyberPreKeys(
  stores: SignalStores,
  identity: IdentityKeyPair,
  firstId: number,
  count: number,
): Promise<PublicSignedPreKey[]> {
  const out: PublicSignedPreKey[] = [];
  for (let keyId = firstId; keyId < firstId + count; keyId++) out.push(await newKyberPreKey(stores, identity, keyId));
  return out;
}
