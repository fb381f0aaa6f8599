// Pure push rules: what a registration may name, which queue items wake a device, how wake-ups coalesce, the
// per-device rate window, retry backoff, how a push service's answer is read, and the content-free bodies sent.
import { createECDH } from "node:crypto";
import type { PushConfig, RateLimit } from "../config.ts";
import { AppError, badInput } from "../errors.ts";

export type PushKind = "WEB_PUSH" | "GATEWAY";

export interface PushRegistrationInput {
  kind: PushKind;
  endpoint?: string | null;
  p256dh?: string | null;
  auth?: string | null;
  gateway?: string | null;
  token?: string | null;
}

export type Registration =
  | { kind: "WEB_PUSH"; endpoint: string; p256dh: Buffer; auth: Buffer }
  | { kind: "GATEWAY"; gateway: string; token: string };

/** Browser endpoints are a few hundred characters; the bound leaves room and keeps rows and requests small. */
export const MAX_ENDPOINT_CHARS = 1024;
export const MAX_TOKEN_CHARS = 1024;
const P256DH_BYTES = 65;
const AUTH_BYTES = 16;

/** Refusals carry `extensions.reason`, so a client can tell what to fix. */
const refuse = (reason: string, message: string) => badInput(message, { reason });

function fromBase64Url(value: string, field: string, bytes: number): Buffer {
  // Browsers give base64url without padding (PushSubscription.toJSON); plain base64 is accepted too.
  if (value.length > 4 * bytes || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) {
    throw refuse("INVALID_KEY", `${field} must be base64url`);
  }
  const out = Buffer.from(value.replace(/-/g, "+").replace(/_/g, "/"), "base64");
  if (out.length !== bytes) throw refuse("INVALID_KEY", `${field} must be ${bytes} bytes`);
  return out;
}

/** `*.example.com` covers its subdomains (not itself); `host:port` pins the port; a bare host allows any port. */
export function hostAllowed(url: URL, allowlist: string[]): boolean {
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, "");
  const port = url.port || "443";
  return allowlist.some((entry) => {
    const [h, p] = entry.startsWith("[") ? [entry.slice(1, entry.indexOf("]")), entry.split("]:")[1]] : entry.split(":");
    if (p && p !== port) return false;
    return h.startsWith("*.") ? host.endsWith(h.slice(1)) && host.length > h.length - 1 : host === h;
  });
}

export function validateEndpoint(endpoint: string, allowlist: string[]): string {
  if (endpoint.length > MAX_ENDPOINT_CHARS) throw refuse("TOO_LARGE", `endpoint must be at most ${MAX_ENDPOINT_CHARS} characters`);
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw refuse("INVALID_ENDPOINT", "endpoint must be a URL");
  }
  if (url.protocol !== "https:") throw refuse("NOT_HTTPS", "endpoint must be an https URL");
  if (url.username || url.password) throw refuse("INVALID_ENDPOINT", "endpoint must not carry credentials");
  if (!hostAllowed(url, allowlist)) throw refuse("ENDPOINT_NOT_ALLOWED", `push service ${url.host} is not allowed here`);
  return url.toString();
}

function validP256(point: Buffer): boolean {
  try {
    const ecdh = createECDH("prime256v1");
    ecdh.generateKeys();
    ecdh.computeSecret(point);
    return true;
  } catch {
    return false;
  }
}

/** Checks and normalises what a device registers; throws BAD_USER_INPUT with a reason. */
export function validateRegistration(
  input: PushRegistrationInput,
  config: Pick<PushConfig, "endpointAllowlist" | "gateways">,
  webPushAvailable: boolean,
): Registration {
  if (input.kind === "WEB_PUSH") {
    if (input.gateway || input.token) throw refuse("INVALID_REGISTRATION", "WEB_PUSH takes endpoint, p256dh and auth only");
    if (!input.endpoint || !input.p256dh || !input.auth) {
      throw refuse("INVALID_REGISTRATION", "WEB_PUSH needs endpoint, p256dh and auth");
    }
    const endpoint = validateEndpoint(input.endpoint, config.endpointAllowlist);
    const p256dh = fromBase64Url(input.p256dh, "p256dh", P256DH_BYTES);
    if (!validP256(p256dh)) throw refuse("INVALID_KEY", "p256dh is not a P-256 public key");
    const auth = fromBase64Url(input.auth, "auth", AUTH_BYTES);
    if (!webPushAvailable) throw new AppError("UNAVAILABLE", "this server has no VAPID keys configured", { reason: "NO_VAPID" });
    return { kind: "WEB_PUSH", endpoint, p256dh, auth };
  }
  if (input.endpoint || input.p256dh || input.auth) throw refuse("INVALID_REGISTRATION", "GATEWAY takes gateway and token only");
  if (!input.gateway || !input.token) throw refuse("INVALID_REGISTRATION", "GATEWAY needs gateway and token");
  if (input.token.length > MAX_TOKEN_CHARS) throw refuse("TOO_LARGE", `token must be at most ${MAX_TOKEN_CHARS} characters`);
  if (!/^[\x21-\x7e]+$/.test(input.token)) throw refuse("INVALID_REGISTRATION", "token must be printable ASCII");
  if (!Object.hasOwn(config.gateways, input.gateway)) throw refuse("UNKNOWN_GATEWAY", `no gateway named ${input.gateway.slice(0, 64)}`);
  return { kind: "GATEWAY", gateway: input.gateway, token: input.token };
}

/** Queue items that are worth waking a device for: messages, not receipts or deletions of messages it has. */
export const WAKING_EVENTS = new Set(["EnvelopeEvent", "GroupEvent"]);

export interface Wake {
  userId: string;
  deviceId: number;
  urgent: boolean;
}

/** One wake per device from many queued items; urgent when any of them is. */
export function coalesce(items: Wake[]): Wake[] {
  const out = new Map<string, Wake>();
  for (const w of items) {
    const k = `${w.userId}:${w.deviceId}`;
    const seen = out.get(k);
    out.set(k, seen ? { ...seen, urgent: seen.urgent || w.urgent } : { ...w });
  }
  return [...out.values()];
}

export interface RateWindow {
  startedAt: Date | null;
  count: number;
}

/** Fixed window per device: allowed now, or the time the window reopens. */
export function rateCheck(
  w: RateWindow,
  now: Date,
  limit: RateLimit | null,
): { allowed: true; next: RateWindow } | { allowed: false; retryAt: Date } {
  if (!limit) return { allowed: true, next: w };
  const windowMs = limit.windowSeconds * 1000;
  const open = w.startedAt && now.getTime() - w.startedAt.getTime() < windowMs;
  if (!open) return { allowed: true, next: { startedAt: now, count: 1 } };
  if (w.count < limit.points) return { allowed: true, next: { startedAt: w.startedAt, count: w.count + 1 } };
  return { allowed: false, retryAt: new Date(w.startedAt!.getTime() + windowMs) };
}

const MAX_BACKOFF_MS = 10 * 60_000;

/** Exponential backoff after the n-th failed attempt (1-based), with up to 20% jitter so retries spread out. */
export function backoffMs(attempt: number, baseMs: number, random = Math.random): number {
  const raw = Math.min(MAX_BACKOFF_MS, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(raw * (1 + 0.2 * random()));
}

export type Outcome = "sent" | "gone" | "retry" | "drop";

/** RFC 8030: 201 accepted; 404/410 the subscription is gone; 429 and 5xx are worth retrying; other 4xx are not. */
export function classifyStatus(status: number): Outcome {
  if (status >= 200 && status < 300) return "sent";
  if (status === 404 || status === 410) return "gone";
  if (status === 429 || status === 408 || status >= 500) return "retry";
  return "drop";
}

/** The whole Web Push payload: the same bytes for every push, so its size says nothing either. */
export const WAKE_PAYLOAD = JSON.stringify({ kind: "wake" });
/** Web Push Topic: an undelivered wake-up at the push service is replaced by the next one, not stacked. */
export const WAKE_TOPIC = "wake";

/**
 * A Matrix push gateway notification (spec: Push Gateway API, /_matrix/push/v1/notify) carrying only the device:
 * no event, room, sender or counts.
 */
export function gatewayNotification(gateway: string, token: string, urgent: boolean) {
  return { notification: { prio: urgent ? "high" : "low", devices: [{ app_id: gateway, pushkey: token }] } };
}

/** A gateway that answers `{"rejected": [token]}` no longer knows the token: the registration is gone. */
export function gatewayRejected(body: string, token: string): boolean {
  try {
    const parsed = JSON.parse(body) as { rejected?: unknown };
    return Array.isArray(parsed.rejected) && parsed.rejected.includes(token);
  } catch {
    return false;
  }
}
