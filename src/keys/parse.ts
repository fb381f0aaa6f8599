// Checks public Signal key material with libsignal itself: every key must deserialize as the type it claims, and
// every signed key must verify against the device's identity key (XEdDSA). The server never sees a private key.
import { KEMPublicKey, PublicKey } from "@signalapp/libsignal-client";
import { badInput } from "../errors.ts";

export const MAX_KEYS_PER_UPLOAD = 100;
export const MAX_KEY_ID = 0x7fffffff;
const EC_PUBLIC_KEY_BYTES = 33;
// ML-KEM-1024 public key (1568 bytes) plus libsignal's one-byte type prefix; anything larger is not a key.
const MAX_KEM_PUBLIC_KEY_BYTES = 1600;
const SIGNATURE_BYTES = 64;

export interface PreKey {
  keyId: number;
  publicKey: Uint8Array<ArrayBuffer>;
}
export interface SignedPreKey extends PreKey {
  signature: Uint8Array<ArrayBuffer>;
}

function checkKeyId(keyId: number, what: string) {
  if (!Number.isInteger(keyId) || keyId < 0 || keyId > MAX_KEY_ID) {
    throw badInput(`${what}: keyId must be an integer from 0 to ${MAX_KEY_ID}`);
  }
}

export function parseIdentityKey(bytes: Uint8Array<ArrayBuffer>): PublicKey {
  if (bytes.length !== EC_PUBLIC_KEY_BYTES) {
    throw badInput(`identityKey must be a ${EC_PUBLIC_KEY_BYTES}-byte libsignal PublicKey`);
  }
  try {
    return PublicKey.deserialize(bytes);
  } catch {
    throw badInput("identityKey is not a valid libsignal PublicKey");
  }
}

export function checkEcPreKey(key: PreKey, what: string): void {
  checkKeyId(key.keyId, what);
  if (key.publicKey.length !== EC_PUBLIC_KEY_BYTES) throw badInput(`${what}: publicKey must be ${EC_PUBLIC_KEY_BYTES} bytes`);
  try {
    PublicKey.deserialize(key.publicKey);
  } catch {
    throw badInput(`${what}: publicKey is not a valid Curve25519 public key`);
  }
}

function checkSignature(identity: PublicKey, key: SignedPreKey, what: string) {
  if (key.signature.length !== SIGNATURE_BYTES) throw badInput(`${what}: signature must be ${SIGNATURE_BYTES} bytes`);
  let ok = false;
  try {
    ok = identity.verify(key.publicKey, key.signature);
  } catch {
    ok = false;
  }
  if (!ok) throw badInput(`${what}: signature does not verify against the device's identity key`);
}

export function checkSignedEcPreKey(identity: PublicKey, key: SignedPreKey, what: string): void {
  checkEcPreKey(key, what);
  checkSignature(identity, key, what);
}

export function checkSignedKyberPreKey(identity: PublicKey, key: SignedPreKey, what: string): void {
  checkKeyId(key.keyId, what);
  if (key.publicKey.length > MAX_KEM_PUBLIC_KEY_BYTES) throw badInput(`${what}: publicKey is too large for a KEM key`);
  try {
    KEMPublicKey.deserialize(key.publicKey);
  } catch {
    throw badInput(`${what}: publicKey is not a valid libsignal KEM (Kyber) public key`);
  }
  checkSignature(identity, key, what);
}

/** Bounds a batch and rejects key ids repeated inside it. */
export function checkBatch<T extends PreKey>(keys: readonly T[], what: string): void {
  if (keys.length > MAX_KEYS_PER_UPLOAD) throw badInput(`${what}: at most ${MAX_KEYS_PER_UPLOAD} keys per upload`);
  const ids = new Set<number>();
  for (const k of keys) {
    if (ids.has(k.keyId)) throw badInput(`${what}: keyId ${k.keyId} appears twice`, { keyId: k.keyId });
    ids.add(k.keyId);
  }
}
