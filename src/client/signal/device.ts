// One local Signal device: its identity, its pre-key stores, and 1:1 encrypt/decrypt with libsignal (PQXDH session
// set-up from a server bundle, then the Double Ratchet). Everything private stays in the KeyValueStore.
import {
  CiphertextMessageType,
  Fingerprint,
  IdentityKeyPair,
  KEMPublicKey,
  PreKeyBundle,
  PreKeySignalMessage,
  ProtocolAddress,
  PublicKey,
  SignalMessage,
  processPreKeyBundle,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
} from "@signalapp/libsignal-client";
import { b64, unb64 } from "../base64.ts";
import type { KeyValueStore } from "./kv.ts";
import {
  newIdentity,
  newKyberPreKey,
  newOneTimeKyberPreKeys,
  newOneTimePreKeys,
  newSignedPreKey,
  type PublicPreKey,
  type PublicSignedPreKey,
} from "./keygen.ts";
import {
  SignalIdentityStore,
  SignalKyberPreKeyStore,
  SignalPreKeyStore,
  SignalSessionStore,
  SignalSignedPreKeyStore,
  type SignalStores,
} from "./stores.ts";

/** A bundle as the server's claimPreKeyBundles returns it (Bytes as base64). */
export interface BundleFields {
  userId: string;
  deviceId: number;
  registrationId: number;
  identityKey: string;
  signedPreKeyId: number;
  signedPreKey: string;
  signedPreKeySignature: string;
  preKeyId?: number | null;
  preKey?: string | null;
  kyberPreKeyId: number;
  kyberPreKey: string;
  kyberPreKeySignature: string;
}

export interface KeysInputFields {
  identityKey: string;
  registrationId: number;
  signedPreKey: PublicSignedPreKey;
  lastResortKyberPreKey: PublicSignedPreKey;
  oneTimePreKeys: PublicPreKey[];
  oneTimeKyberPreKeys: PublicSignedPreKey[];
}

const num = (b: Uint8Array | undefined) => (b ? Number(Buffer.from(b).toString("utf8")) : undefined);
const enc = (n: number) => new Uint8Array(Buffer.from(String(n), "utf8"));

export class SignalDevice {
  private constructor(
    private kv: KeyValueStore,
    readonly identity: IdentityKeyPair,
    readonly registrationId: number,
    readonly stores: SignalStores,
  ) {}

  /** Opens the device kept in kv, or creates a new identity there. */
  static async open(
    kv: KeyValueStore,
    onIdentityChanged?: (address: ProtocolAddress, key: PublicKey) => void,
  ): Promise<SignalDevice> {
    let idBytes = await kv.get("self/identity");
    let regId = num(await kv.get("self/registrationId"));
    if (!idBytes || !regId) {
      const fresh = newIdentity();
      idBytes = fresh.identity.serialize();
      regId = fresh.registrationId;
      await kv.set("self/identity", idBytes);
      await kv.set("self/registrationId", enc(regId));
    }
    const identity = IdentityKeyPair.deserialize(idBytes);
    const stores: SignalStores = {
      session: new SignalSessionStore(kv),
      identity: new SignalIdentityStore(kv, identity, regId, onIdentityChanged),
      preKey: new SignalPreKeyStore(kv),
      signedPreKey: new SignalSignedPreKeyStore(kv),
      kyberPreKey: new SignalKyberPreKeyStore(kv, async (id) => (await kv.get(`self/lastResortKyber/${id}`)) !== undefined),
    };
    return new SignalDevice(kv, identity, regId, stores);
  }

  /** Key ids grow monotonically per kind so a new batch never collides with one the server still holds. */
  private async nextIds(kind: string, count: number): Promise<number> {
    const first = num(await this.kv.get(`self/nextId/${kind}`)) ?? 1;
    await this.kv.set(`self/nextId/${kind}`, enc(first + count));
    return first;
  }

  async rotateSignedPreKey(): Promise<PublicSignedPreKey> {
    return newSignedPreKey(this.stores, this.identity, await this.nextIds("signed", 1));
  }

  async rotateLastResortKyberPreKey(): Promise<PublicSignedPreKey> {
    const id = await this.nextIds("kyber", 1);
    await this.kv.set(`self/lastResortKyber/${id}`, enc(1));
    return newKyberPreKey(this.stores, this.identity, id);
  }

  /**
   * Deletes signed pre-keys and last-resort Kyber keys that were replaced long ago: the newest `keep` of each kind
   * stay, and so does any younger than maxAgeMs, since a PreKey message built on them may still be in flight.
   */
  async retireOldKeys(keep: number, maxAgeMs: number): Promise<number> {
    const cutoff = Date.now() - maxAgeMs;
    const idOf = (k: string) => Number(k.slice(k.lastIndexOf("/") + 1));
    let removed = 0;
    const signedIds = (await this.kv.list("signed/")).map(idOf).sort((a, b) => b - a);
    for (const id of signedIds.slice(keep)) {
      const rec = await this.stores.signedPreKey.getSignedPreKey(id);
      if (rec.timestamp() < cutoff) {
        await this.kv.delete(`signed/${id}`);
        removed++;
      }
    }
    const kyberIds = (await this.kv.list("self/lastResortKyber/")).map(idOf).sort((a, b) => b - a);
    for (const id of kyberIds.slice(keep)) {
      const rec = await this.stores.kyberPreKey.getKyberPreKey(id);
      if (rec.timestamp() < cutoff) {
        await this.kv.delete(`kyber/${id}`);
        await this.kv.delete(`self/lastResortKyber/${id}`);
        removed++;
      }
    }
    return removed;
  }

  async oneTimeKeys(count: number): Promise<{ oneTimePreKeys: PublicPreKey[]; oneTimeKyberPreKeys: PublicSignedPreKey[] }> {
    return {
      oneTimePreKeys: await newOneTimePreKeys(this.stores, await this.nextIds("ec", count), count),
      oneTimeKyberPreKeys: await newOneTimeKyberPreKeys(this.stores, this.identity, await this.nextIds("kyber", count), count),
    };
  }

  /** A complete KeysInput for registerAccount / linkDevice. */
  async registrationKeys(oneTimeCount: number): Promise<KeysInputFields> {
    return {
      identityKey: b64(this.identity.publicKey.serialize()),
      registrationId: this.registrationId,
      signedPreKey: await this.rotateSignedPreKey(),
      lastResortKyberPreKey: await this.rotateLastResortKyberPreKey(),
      ...(await this.oneTimeKeys(oneTimeCount)),
    };
  }

  async hasSession(userId: string, deviceId: number): Promise<boolean> {
    const s = await this.stores.session.getSession(ProtocolAddress.new(userId, deviceId));
    return !!s?.hasCurrentState();
  }

  /** The registration id the session with that device was set up with; undefined without a session. */
  async sessionRegistrationId(userId: string, deviceId: number): Promise<number | undefined> {
    const s = await this.stores.session.getSession(ProtocolAddress.new(userId, deviceId));
    return s?.hasCurrentState() ? s.remoteRegistrationId() : undefined;
  }

  /** The identity key last seen for a remote device (trust on first use), if any. */
  async remoteIdentity(userId: string, deviceId: number): Promise<PublicKey | null> {
    return this.stores.identity.getIdentity(ProtocolAddress.new(userId, deviceId));
  }

  /**
   * The 60-digit safety number between this device and a remote one, computed by libsignal's Fingerprint (version
   * 2, 5200 iterations as Signal uses) over both user ids and identity keys. Both sides compute the same digits.
   */
  safetyNumber(selfUserId: string, remoteUserId: string, remoteKey: PublicKey): string {
    const id = (u: string) => new Uint8Array(Buffer.from(u, "utf8"));
    return Fingerprint.new(5200, 2, id(selfUserId), this.identity.publicKey, id(remoteUserId), remoteKey)
      .displayableFingerprint()
      .toString();
  }

  async forgetSession(userId: string, deviceId: number): Promise<void> {
    await this.stores.session.deleteSession(ProtocolAddress.new(userId, deviceId));
  }

  /** PQXDH: starts a session with a remote device from its bundle. */
  async processBundle(self: { userId: string; deviceId: number }, b: BundleFields): Promise<void> {
    const bundle = PreKeyBundle.new(
      b.registrationId,
      b.deviceId,
      b.preKeyId ?? null,
      b.preKey ? PublicKey.deserialize(unb64(b.preKey)) : null,
      b.signedPreKeyId,
      PublicKey.deserialize(unb64(b.signedPreKey)),
      unb64(b.signedPreKeySignature),
      PublicKey.deserialize(unb64(b.identityKey)),
      b.kyberPreKeyId,
      KEMPublicKey.deserialize(unb64(b.kyberPreKey)),
      unb64(b.kyberPreKeySignature),
    );
    const s = this.stores;
    await processPreKeyBundle(
      bundle,
      ProtocolAddress.new(b.userId, b.deviceId),
      ProtocolAddress.new(self.userId, self.deviceId),
      s.session,
      s.identity,
    );
  }

  async encrypt(
    self: { userId: string; deviceId: number },
    to: { userId: string; deviceId: number },
    plaintext: Uint8Array<ArrayBuffer>,
  ): Promise<{ type: number; body: string }> {
    const s = this.stores;
    const msg = await signalEncrypt(
      plaintext,
      ProtocolAddress.new(to.userId, to.deviceId),
      ProtocolAddress.new(self.userId, self.deviceId),
      s.session,
      s.identity,
    );
    return { type: msg.type(), body: b64(msg.serialize()) };
  }

  async decrypt(
    self: { userId: string; deviceId: number },
    from: { userId: string; deviceId: number },
    type: number,
    body: string,
  ): Promise<Uint8Array<ArrayBuffer>> {
    const s = this.stores;
    const remote = ProtocolAddress.new(from.userId, from.deviceId);
    const local = ProtocolAddress.new(self.userId, self.deviceId);
    if (type === CiphertextMessageType.PreKey) {
      return signalDecryptPreKey(
        PreKeySignalMessage.deserialize(unb64(body)),
        remote,
        local,
        s.session,
        s.identity,
        s.preKey,
        s.signedPreKey,
        s.kyberPreKey,
      );
    }
    if (type === CiphertextMessageType.Whisper) {
      return signalDecrypt(SignalMessage.deserialize(unb64(body)), remote, local, s.session, s.identity);
    }
    throw new Error(`unsupported ciphertext type ${type}`);
  }
}
