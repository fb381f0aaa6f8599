// libsignal's protocol stores over a KeyValueStore. One object implements all of them because libsignal calls
// them together and they share the backing store.
import {
  Direction,
  IdentityChange,
  IdentityKeyPair,
  IdentityKeyStore,
  KyberPreKeyRecord,
  KyberPreKeyStore,
  PreKeyRecord,
  PreKeyStore,
  PrivateKey,
  ProtocolAddress,
  PublicKey,
  SessionRecord,
  SessionStore,
  SignedPreKeyRecord,
  SignedPreKeyStore,
} from "@signalapp/libsignal-client";
import type { KeyValueStore } from "./kv.ts";

const addr = (a: ProtocolAddress) => `${a.name()}.${a.deviceId()}`;

export class SignalSessionStore extends SessionStore {
  constructor(private kv: KeyValueStore) {
    super();
  }
  async saveSession(name: ProtocolAddress, record: SessionRecord) {
    await this.kv.set(`session/${addr(name)}`, record.serialize());
  }
  async getSession(name: ProtocolAddress) {
    const raw = await this.kv.get(`session/${addr(name)}`);
    return raw ? SessionRecord.deserialize(raw) : null;
  }
  async getExistingSessions(addresses: ProtocolAddress[]) {
    const out: SessionRecord[] = [];
    for (const a of addresses) {
      const s = await this.getSession(a);
      if (!s) throw new Error(`no session for ${addr(a)}`);
      out.push(s);
    }
    return out;
  }
  async deleteSession(name: ProtocolAddress) {
    await this.kv.delete(`session/${addr(name)}`);
  }
}

export class SignalIdentityStore extends IdentityKeyStore {
  constructor(
    private kv: KeyValueStore,
    private identity: IdentityKeyPair,
    private registrationId: number,
    /** Told when a remote identity key is replaced: the app shows a safety-number change. */
    private onIdentityChanged: (address: ProtocolAddress, key: PublicKey) => void = () => {},
  ) {
    super();
  }
  async getIdentityKey(): Promise<PrivateKey> {
    return this.identity.privateKey;
  }
  async getLocalRegistrationId() {
    return this.registrationId;
  }
  async saveIdentity(name: ProtocolAddress, key: PublicKey): Promise<IdentityChange> {
    const existing = await this.getIdentity(name);
    await this.kv.set(`identity/${addr(name)}`, key.serialize());
    if (existing && !existing.equals(key)) {
      this.onIdentityChanged(name, key);
      return IdentityChange.ReplacedExisting;
    }
    return IdentityChange.NewOrUnchanged;
  }
  // Trust on first use, and trust a changed key too: the change is surfaced through saveIdentity, as Signal's
  // apps do, rather than blocking delivery.
  async isTrustedIdentity(_name: ProtocolAddress, _key: PublicKey, _direction: Direction) {
    return true;
  }
  async getIdentity(name: ProtocolAddress) {
    const raw = await this.kv.get(`identity/${addr(name)}`);
    return raw ? PublicKey.deserialize(raw) : null;
  }
}

export class SignalPreKeyStore extends PreKeyStore {
  constructor(private kv: KeyValueStore) {
    super();
  }
  async savePreKey(id: number, record: PreKeyRecord) {
    await this.kv.set(`prekey/${id}`, record.serialize());
  }
  async getPreKey(id: number) {
    const raw = await this.kv.get(`prekey/${id}`);
    if (!raw) throw new Error(`no pre-key ${id}`);
    return PreKeyRecord.deserialize(raw);
  }
  async removePreKey(id: number) {
    await this.kv.delete(`prekey/${id}`);
  }
}

export class SignalSignedPreKeyStore extends SignedPreKeyStore {
  constructor(private kv: KeyValueStore) {
    super();
  }
  async saveSignedPreKey(id: number, record: SignedPreKeyRecord) {
    await this.kv.set(`signed/${id}`, record.serialize());
  }
  async getSignedPreKey(id: number) {
    const raw = await this.kv.get(`signed/${id}`);
    if (!raw) throw new Error(`no signed pre-key ${id}`);
    return SignedPreKeyRecord.deserialize(raw);
  }
}

export class SignalKyberPreKeyStore extends KyberPreKeyStore {
  constructor(
    private kv: KeyValueStore,
    /** Last-resort keys are reused; one-time ones are deleted once used. */
    private isLastResort: (id: number) => Promise<boolean>,
  ) {
    super();
  }
  async saveKyberPreKey(id: number, record: KyberPreKeyRecord) {
    await this.kv.set(`kyber/${id}`, record.serialize());
  }
  async getKyberPreKey(id: number) {
    const raw = await this.kv.get(`kyber/${id}`);
    if (!raw) throw new Error(`no kyber pre-key ${id}`);
    return KyberPreKeyRecord.deserialize(raw);
  }
  async markKyberPreKeyUsed(id: number) {
    if (!(await this.isLastResort(id))) await this.kv.delete(`kyber/${id}`);
  }
}

export interface SignalStores {
  session: SignalSessionStore;
  identity: SignalIdentityStore;
  preKey: SignalPreKeyStore;
  signedPreKey: SignalSignedPreKeyStore;
  kyberPreKey: SignalKyberPreKeyStore;
}
