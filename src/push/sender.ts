// Sends one wake-up: Web Push through the web-push library (RFC 8291 encryption, RFC 8292 VAPID) or a Matrix-style
// notification to a configured gateway. web-push builds the request; it goes out here, so every request has a
// timeout, a kept-alive connection pool with the configured CAs, and a bounded read of the answer.
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { rootCertificates } from "node:tls";
import webpush from "web-push";
import type { PushConfig } from "../config.ts";
import { classifyStatus, gatewayNotification, gatewayRejected, WAKE_PAYLOAD, WAKE_TOPIC, type Outcome } from "./rules.ts";
import type { Claimed } from "./store.ts";

/** Push services answer with a short status text; anything longer is cut off unread. */
const MAX_ANSWER_BYTES = 4096;

export interface SendOutcome {
  outcome: Outcome;
  /** The HTTP status, or null when no answer came (timeout, refused connection). */
  status: number | null;
  /** From a Retry-After header, when the push service sent one. */
  retryAfterMs: number | null;
}

export interface VapidKeys {
  publicKey: string;
  privateKey: string;
}

export type PushSender = ReturnType<typeof createPushSender>;

export function createPushSender(config: PushConfig, vapid: VapidKeys | null) {
  const ca = config.caFile ? [...rootCertificates, readFileSync(config.caFile, "utf8")] : undefined;
  const agentOptions = { keepAlive: true, maxSockets: config.concurrency, timeout: config.timeoutMs };
  const httpsAgent = new https.Agent({ ...agentOptions, ca });
  const httpAgent = new http.Agent(agentOptions);
  const vapidDetails = vapid ? { subject: config.vapidSubject, ...vapid } : null;

  function post(url: string, headers: Record<string, string | number>, body: Buffer): Promise<{ status: number; text: string; retryAfter: string | null }> {
    const target = new URL(url);
    const secure = target.protocol === "https:";
    return new Promise((resolve, reject) => {
      const req = (secure ? https : http).request(target, {
        method: "POST",
        headers: { ...headers, "Content-Length": body.length },
        agent: secure ? httpsAgent : httpAgent,
        signal: AbortSignal.timeout(config.timeoutMs),
      });
      req.once("error", reject);
      req.once("response", (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const done = () => {
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString("utf8"),
            retryAfter: (res.headers["retry-after"] as string | undefined) ?? null,
          });
        };
        res.on("data", (c: Buffer) => {
          if (size >= MAX_ANSWER_BYTES) return;
          chunks.push(c.subarray(0, MAX_ANSWER_BYTES - size));
          size += c.length;
          // Enough read: the rest is not wanted, and this connection is not worth keeping for it.
          if (size >= MAX_ANSWER_BYTES) (res.destroy(), done());
        });
        res.once("end", done);
        res.once("error", reject);
      });
      req.end(body);
    });
  }

  const retryAfterMs = (v: string | null): number | null => {
    if (!v) return null;
    const seconds = Number(v);
    if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
    const at = Date.parse(v);
    return Number.isFinite(at) ? Math.max(0, at - Date.now()) : null;
  };

  function webPushRequest(row: Claimed) {
    if (!vapidDetails) throw new Error("no VAPID keys");
    const details = webpush.generateRequestDetails(
      {
        endpoint: row.endpoint!,
        keys: { p256dh: Buffer.from(row.p256dh!, "base64").toString("base64url"), auth: Buffer.from(row.auth!, "base64").toString("base64url") },
      },
      WAKE_PAYLOAD,
      {
        vapidDetails,
        TTL: row.urgent ? config.urgentTtlSeconds : config.ttlSeconds,
        urgency: row.urgent ? "high" : "normal",
        topic: WAKE_TOPIC,
        contentEncoding: "aes128gcm",
      },
    );
    return { url: details.endpoint, headers: details.headers as Record<string, string>, body: details.body as Buffer };
  }

  /** One attempt; never throws (a failure to reach the push service is a retry). */
  async function send(row: Claimed): Promise<SendOutcome> {
    try {
      if (row.kind === "WEB_PUSH") {
        const r = webPushRequest(row);
        const answer = await post(r.url, r.headers, r.body);
        return { outcome: classifyStatus(answer.status), status: answer.status, retryAfterMs: retryAfterMs(answer.retryAfter) };
      }
      const url = config.gateways[row.gateway!];
      // The gateway was taken out of the configuration: nothing can be sent to it any more.
      if (!url) return { outcome: "gone", status: null, retryAfterMs: null };
      const body = Buffer.from(JSON.stringify(gatewayNotification(row.gateway!, row.token!, row.urgent)));
      const answer = await post(url, { "Content-Type": "application/json" }, body);
      const outcome = classifyStatus(answer.status);
      return {
        outcome: outcome === "sent" && gatewayRejected(answer.text, row.token!) ? "gone" : outcome,
        status: answer.status,
        retryAfterMs: retryAfterMs(answer.retryAfter),
      };
    } catch {
      return { outcome: "retry", status: null, retryAfterMs: null };
    }
  }

  function close() {
    httpsAgent.destroy();
    httpAgent.destroy();
  }

  return { send, close };
}
