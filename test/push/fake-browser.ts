// What a browser and its push service do, on loopback: a subscription key pair held by the test, an https push
// service with a self-signed certificate (made with openssl) that checks the VAPID JWT and decrypts RFC 8291
// aes128gcm bodies with node:crypto, and a plain HTTP push gateway that records what it is posted.
import { execFileSync } from "node:child_process";
import { createECDH, createDecipheriv, createPublicKey, hkdfSync, randomBytes, verify, type ECDH } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import webpush from "web-push";

export interface TestCert {
  dir: string;
  certFile: string;
  keyFile: string;
}

/** A self-signed P-256 certificate for 127.0.0.1, as NOTES.md describes. */
export function makeCert(): TestCert {
  const dir = mkdtempSync(join(tmpdir(), "vg-push-"));
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", keyFile, "-out", certFile,
  ], { stdio: "ignore" });
  return { dir, certFile, keyFile };
}

/**
 * Server settings for pushing to the local push service: 127.0.0.1 allowed, its certificate trusted (PUSH_CA_FILE,
 * for in-process servers), a VAPID pair (PostgreSQL mode generates none), quick polls and retries.
 */
export function pushEnv(cert: TestCert, extra: Record<string, string> = {}): Record<string, string> {
  const vapid = webpush.generateVAPIDKeys();
  return {
    PUSH_CA_FILE: cert.certFile,
    PUSH_ENDPOINT_ALLOWLIST: "127.0.0.1",
    PUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
    PUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
    PUSH_POLL_MS: "100",
    PUSH_RETRY_BASE_MS: "50",
    PUSH_TIMEOUT_MS: "1000",
    ...extra,
  };
}

/** A browser's side of one subscription: the private key never leaves the test. */
export class Subscriber {
  readonly ecdh: ECDH = createECDH("prime256v1");
  readonly auth = randomBytes(16);
  constructor() {
    this.ecdh.generateKeys();
  }
  keys() {
    return { p256dh: this.ecdh.getPublicKey().toString("base64url"), auth: this.auth.toString("base64url") };
  }

  /** RFC 8291 / RFC 8188: one aes128gcm record; returns the plaintext without its padding. */
  decrypt(body: Buffer): string {
    const salt = body.subarray(0, 16);
    const idlen = body[20];
    const senderPublic = body.subarray(21, 21 + idlen);
    const ciphertext = body.subarray(21 + idlen);
    const secret = this.ecdh.computeSecret(senderPublic);
    const keyInfo = Buffer.concat([Buffer.from("WebPush: info\0"), this.ecdh.getPublicKey(), senderPublic]);
    const ikm = Buffer.from(hkdfSync("sha256", secret, this.auth, keyInfo, 32));
    const cek = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16));
    const nonce = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: nonce\0"), 12));
    const decipher = createDecipheriv("aes-128-gcm", cek, nonce);
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
    const padded = Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - 16)), decipher.final()]);
    // The last record ends with the delimiter 0x02 followed by zero padding.
    let end = padded.length - 1;
    while (end >= 0 && padded[end] === 0) end--;
    if (padded[end] !== 2) throw new Error("no last-record delimiter");
    return padded.subarray(0, end).toString("utf8");
  }
}

/** Verifies `Authorization: vapid t=<jwt>, k=<key>` (RFC 8292) against the expected public key; returns the claims. */
export function verifyVapid(authorization: string | undefined, expectedKey: string, audience: string) {
  const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(authorization ?? "");
  if (!m) throw new Error(`not a VAPID authorization: ${authorization}`);
  const [, jwt, k] = m;
  if (k !== expectedKey) throw new Error("VAPID key is not the server's pushConfig.vapidPublicKey");
  const [h, p, s] = jwt.split(".");
  const header = JSON.parse(Buffer.from(h, "base64url").toString());
  if (header.alg !== "ES256") throw new Error(`alg ${header.alg}`);
  const raw = Buffer.from(k, "base64url");
  const key = createPublicKey({
    key: { kty: "EC", crv: "P-256", x: raw.subarray(1, 33).toString("base64url"), y: raw.subarray(33).toString("base64url") },
    format: "jwk",
  });
  const ok = verify("sha256", Buffer.from(`${h}.${p}`), { key, dsaEncoding: "ieee-p1363" }, Buffer.from(s, "base64url"));
  if (!ok) throw new Error("VAPID signature does not verify");
  const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as { aud: string; exp: number; sub: string };
  if (claims.aud !== audience) throw new Error(`aud ${claims.aud}, wanted ${audience}`);
  if (claims.exp * 1000 < Date.now()) throw new Error("VAPID JWT expired");
  return claims;
}

export interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The status it was answered with. */
  status: number;
  /** performance.now() when it arrived. */
  at: number;
}

/** What the push service answers a request with: a status, or "hang" (never answers). */
export type Answer = number | "hang";

export interface PushServiceHandle {
  origin: string;
  endpoint(id: string): string;
  received: Received[];
  /** Accepted (2xx) pushes per subscription id. */
  accepted(id: string): Received[];
  /** Called for each request; default 201. */
  answer: (id: string, n: number) => Answer;
  close(): Promise<void>;
}

function listen(server: http.Server | https.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

export async function startPushService(cert: TestCert): Promise<PushServiceHandle> {
  const hanging = new Set<http.ServerResponse>();
  const counts = new Map<string, number>();
  const handle: PushServiceHandle = {
    origin: "",
    endpoint: (id) => `${handle.origin}/push/${id}`,
    received: [],
    accepted: (id) => handle.received.filter((r) => r.path === `/push/${id}` && r.status < 300),
    answer: () => 201,
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
  const server = https.createServer({ key: readFileSync(cert.keyFile), cert: readFileSync(cert.certFile) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const id = (req.url ?? "").replace(/^\/push\//, "");
      const n = (counts.get(id) ?? 0) + 1;
      counts.set(id, n);
      const answer = handle.answer(id, n);
      if (answer === "hang") return void hanging.add(res);
      handle.received.push({ path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks), status: answer, at: performance.now() });
      res.writeHead(answer).end();
    });
  });
  handle.origin = `https://127.0.0.1:${await listen(server)}`;
  return handle;
}

export interface GatewayHandle {
  url: string;
  posts: { body: unknown; headers: http.IncomingHttpHeaders }[];
  rejected: Set<string>;
  close(): Promise<void>;
}

/** A Matrix-style push gateway: records each notification and answers `{"rejected": [...]}`. */
export async function startGateway(): Promise<GatewayHandle> {
  const handle: GatewayHandle = { url: "", posts: [], rejected: new Set(), close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { notification: { devices: { pushkey: string }[] } };
      handle.posts.push({ body, headers: req.headers });
      const rejected = body.notification.devices.map((d) => d.pushkey).filter((k) => handle.rejected.has(k));
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ rejected }));
    });
  });
  handle.url = `http://127.0.0.1:${await listen(server)}/_matrix/push/v1/notify`;
  handle.close = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return handle;
}
