// Bearer secrets: 256 random bits, shown to their owner once, stored only as a SHA-256 hash. A fast hash is right
// here: the secret has full entropy, so there is nothing for a slow hash to protect against.
import { createHash, randomBytes } from "node:crypto";

export function newSecret(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString("base64url")}`;
}

export function hashSecret(secret: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(createHash("sha256").update(secret, "utf8").digest());
}
