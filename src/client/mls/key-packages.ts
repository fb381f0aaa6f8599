// This device's MLS key packages: generated here, private halves kept in the device's KeyValueStore under the
// key package ref (what a Welcome names), public halves uploaded to the server.
import {
  decodeMlsMessage,
  defaultCapabilities,
  defaultLifetime,
  encodeMlsMessage,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  type CiphersuiteImpl,
  type KeyPackage,
  type PrivateKeyPackage,
} from "ts-mls";
import { makeKeyPackageRef } from "ts-mls/keyPackage.js";
import { KeyPackageStatusDocument, UploadKeyPackagesDocument } from "../generated/graphql.ts";
import { b64, unb64 } from "../base64.ts";
import type { KeyValueStore } from "../signal/kv.ts";
import type { HttpTransport } from "../transport.ts";

export const MLS_SUITE = "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519" as const;
const MAX_PER_UPLOAD = 100;

let impl: Promise<CiphersuiteImpl> | null = null;
export function mlsSuite(): Promise<CiphersuiteImpl> {
  return (impl ??= getCiphersuiteImpl(getCiphersuiteFromName(MLS_SUITE)));
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

export interface MlsIdentity {
  userId: string;
  deviceId: number;
}

/** The credential identity the server checks: "<userId>.<deviceId>". */
export function credentialFor(id: MlsIdentity) {
  return { credentialType: "basic" as const, identity: new TextEncoder().encode(`${id.userId}.${id.deviceId}`) };
}

export function identityOf(credential: { credentialType: string; identity?: Uint8Array }): string | null {
  return credential.credentialType === "basic" && credential.identity ? new TextDecoder().decode(credential.identity) : null;
}

export class MlsKeyPackages {
  constructor(
    private readonly kv: KeyValueStore,
    private readonly http: HttpTransport,
    readonly identity: MlsIdentity,
  ) {}

  /** A fresh key package whose private half is stored; `encoded` is the MLSMessage to publish. */
  async generate(): Promise<{ publicPackage: KeyPackage; privatePackage: PrivateKeyPackage; encoded: Uint8Array }> {
    const cs = await mlsSuite();
    const kp = await generateKeyPackage(credentialFor(this.identity), defaultCapabilities(), defaultLifetime, [], cs);
    const encoded = encodeMlsMessage({ keyPackage: kp.publicPackage, wireformat: "mls_key_package", version: "mls10" });
    const ref = await makeKeyPackageRef(kp.publicPackage, cs.hash);
    const record = {
      keyPackage: b64(encoded),
      initPrivateKey: b64(kp.privatePackage.initPrivateKey),
      hpkePrivateKey: b64(kp.privatePackage.hpkePrivateKey),
      signaturePrivateKey: b64(kp.privatePackage.signaturePrivateKey),
    };
    await this.kv.set(`mls:kp:${hex(ref)}`, new Uint8Array(Buffer.from(JSON.stringify(record))));
    return { ...kp, encoded };
  }

  /** The key package a Welcome was encrypted to, if it is one of ours. */
  async find(ref: Uint8Array): Promise<{ publicPackage: KeyPackage; privatePackage: PrivateKeyPackage } | null> {
    const raw = await this.kv.get(`mls:kp:${hex(ref)}`);
    if (!raw) return null;
    const r = JSON.parse(Buffer.from(raw).toString()) as Record<string, string>;
    const decoded = decodeMlsMessage(unb64(r.keyPackage), 0)?.[0];
    if (!decoded || decoded.wireformat !== "mls_key_package") return null;
    return {
      publicPackage: decoded.keyPackage,
      privatePackage: {
        initPrivateKey: unb64(r.initPrivateKey),
        hpkePrivateKey: unb64(r.hpkePrivateKey),
        signaturePrivateKey: unb64(r.signaturePrivateKey),
      },
    };
  }

  /** Forgets a one-time key package once a Welcome used it (the last-resort one stays). */
  async consumed(ref: Uint8Array): Promise<void> {
    if (hex(ref) !== Buffer.from((await this.kv.get("mls:kp:lastResort")) ?? []).toString()) await this.kv.delete(`mls:kp:${hex(ref)}`);
  }

  /** Uploads `count` new key packages (in batches the server accepts), and a last-resort one when asked. */
  async upload(count: number, withLastResort = false): Promise<number> {
    let stored = 0;
    let lastResortDue = withLastResort;
    while (count > 0 || lastResortDue) {
      const n = Math.min(count, MAX_PER_UPLOAD);
      count -= n;
      const batch = await Promise.all(Array.from({ length: n }, () => this.generate()));
      let lastResort: string | null = null;
      if (lastResortDue) {
        const last = await this.generate();
        const ref = await makeKeyPackageRef(last.publicPackage, (await mlsSuite()).hash);
        await this.kv.set("mls:kp:lastResort", new Uint8Array(Buffer.from(hex(ref))));
        lastResort = b64(last.encoded);
        lastResortDue = false;
      }
      const { uploadKeyPackages } = await this.http.request(UploadKeyPackagesDocument, {
        keyPackages: batch.map((k) => b64(k.encoded)),
        lastResort,
      });
      stored += uploadKeyPackages;
    }
    return stored;
  }

  /** Tops the server's stock back up when it is below the low-water mark. Returns how many were uploaded. */
  async replenish(target = 20): Promise<number> {
    const { keyPackageStatus: s } = await this.http.request(KeyPackageStatusDocument);
    if (!s.isLow && s.hasLastResort) return 0;
    const want = Math.max(0, Math.max(target, s.lowWaterMark) - s.available);
    return this.upload(want, !s.hasLastResort);
  }
}
