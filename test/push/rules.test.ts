// The pure push rules: allow-list matching, registration checks, coalescing, the rate window, backoff, answers.
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/errors.ts";
import {
  backoffMs,
  classifyStatus,
  coalesce,
  gatewayNotification,
  gatewayRejected,
  hostAllowed,
  rateCheck,
  validateRegistration,
} from "../../src/push/rules.ts";
import { Subscriber } from "./fake-browser.ts";

const allow = ["fcm.googleapis.com", "*.notify.windows.com", "127.0.0.1:8443"];
const cfg = { endpointAllowlist: allow, gateways: { sygnal: "https://push.example/_matrix/push/v1/notify" } };
const reason = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e instanceof AppError ? (e.details.reason ?? e.code) : "not an AppError";
  }
  return "accepted";
};

describe("hostAllowed", () => {
  it.each([
    ["https://fcm.googleapis.com/fcm/send/x", true],
    ["https://FCM.googleapis.com/x", true],
    ["https://evil-fcm.googleapis.com/x", false],
    ["https://fcm.googleapis.com.evil.com/x", false],
    ["https://db5p.notify.windows.com/w/?token=x", true],
    ["https://notify.windows.com/x", false],
    ["https://xnotify.windows.com/x", false],
    ["https://127.0.0.1:8443/x", true],
    ["https://127.0.0.1:8444/x", false],
    ["https://127.0.0.1/x", false],
  ])("%s -> %s", (url, ok) => expect(hostAllowed(new URL(url), allow)).toBe(ok));
});

describe("validateRegistration", () => {
  const keys = new Subscriber().keys();
  it("accepts a browser subscription and normalises its keys", () => {
    const r = validateRegistration({ kind: "WEB_PUSH", endpoint: "https://fcm.googleapis.com/fcm/send/abc", ...keys }, cfg, true);
    expect(r).toMatchObject({ kind: "WEB_PUSH", endpoint: "https://fcm.googleapis.com/fcm/send/abc" });
    if (r.kind === "WEB_PUSH") expect([r.p256dh.length, r.auth.length]).toEqual([65, 16]);
  });
  it("accepts a token for a configured gateway", () => {
    expect(validateRegistration({ kind: "GATEWAY", gateway: "sygnal", token: "abc123" }, cfg, false)).toEqual({
      kind: "GATEWAY",
      gateway: "sygnal",
      token: "abc123",
    });
  });
  it.each([
    [{ kind: "WEB_PUSH", endpoint: "http://fcm.googleapis.com/x", ...keys }, "NOT_HTTPS"],
    [{ kind: "WEB_PUSH", endpoint: "https://example.com/x", ...keys }, "ENDPOINT_NOT_ALLOWED"],
    [{ kind: "WEB_PUSH", endpoint: "not a url", ...keys }, "INVALID_ENDPOINT"],
    [{ kind: "WEB_PUSH", endpoint: `https://fcm.googleapis.com/${"x".repeat(1100)}`, ...keys }, "TOO_LARGE"],
    [{ kind: "WEB_PUSH", endpoint: "https://fcm.googleapis.com/x", p256dh: "!!", auth: keys.auth }, "INVALID_KEY"],
    [{ kind: "WEB_PUSH", endpoint: "https://fcm.googleapis.com/x", ...keys, token: "t" }, "INVALID_REGISTRATION"],
    [{ kind: "GATEWAY", gateway: "sygnal", token: "a b" }, "INVALID_REGISTRATION"],
    [{ kind: "GATEWAY", gateway: "toString", token: "t" }, "UNKNOWN_GATEWAY"],
    [{ kind: "GATEWAY", gateway: "sygnal" }, "INVALID_REGISTRATION"],
  ] as const)("refuses %j with %s", (input, why) => expect(reason(() => validateRegistration(input, cfg, true))).toBe(why));
  it("refuses Web Push when the server has no VAPID keys", () => {
    expect(reason(() => validateRegistration({ kind: "WEB_PUSH", endpoint: "https://fcm.googleapis.com/x", ...keys }, cfg, false))).toBe("NO_VAPID");
  });
});

describe("coalesce, rate window, backoff, answers", () => {
  it("folds wakes per device, urgent when any is", () => {
    const out = coalesce([
      { userId: "a", deviceId: 1, urgent: false },
      { userId: "a", deviceId: 1, urgent: true },
      { userId: "a", deviceId: 2, urgent: false },
      { userId: "a", deviceId: 1, urgent: false },
    ]);
    expect(out).toEqual([
      { userId: "a", deviceId: 1, urgent: true },
      { userId: "a", deviceId: 2, urgent: false },
    ]);
  });
  it("allows `points` pushes per window, then names when the window reopens", () => {
    const limit = { points: 2, windowSeconds: 60 };
    const t0 = new Date(1_000_000);
    const a = rateCheck({ startedAt: null, count: 0 }, t0, limit);
    expect(a).toEqual({ allowed: true, next: { startedAt: t0, count: 1 } });
    const b = rateCheck({ startedAt: t0, count: 1 }, new Date(t0.getTime() + 1000), limit);
    expect(b).toEqual({ allowed: true, next: { startedAt: t0, count: 2 } });
    expect(rateCheck({ startedAt: t0, count: 2 }, new Date(t0.getTime() + 2000), limit)).toEqual({
      allowed: false,
      retryAt: new Date(t0.getTime() + 60_000),
    });
    const later = new Date(t0.getTime() + 60_000);
    expect(rateCheck({ startedAt: t0, count: 2 }, later, limit)).toEqual({ allowed: true, next: { startedAt: later, count: 1 } });
    expect(rateCheck({ startedAt: t0, count: 99 }, t0, null)).toMatchObject({ allowed: true });
  });
  it("backs off exponentially with bounded jitter and a cap", () => {
    expect([1, 2, 3, 4].map((n) => backoffMs(n, 100, () => 0))).toEqual([100, 200, 400, 800]);
    expect(backoffMs(2, 100, () => 1)).toBe(240);
    expect(backoffMs(60, 1000, () => 0)).toBe(600_000);
  });
  it("reads push service answers as RFC 8030 says", () => {
    expect([201, 202, 404, 410, 429, 500, 503, 400, 403, 413].map(classifyStatus)).toEqual([
      "sent", "sent", "gone", "gone", "retry", "retry", "retry", "drop", "drop", "drop",
    ]);
  });
  it("a gateway notification names the device token and nothing else", () => {
    const n = gatewayNotification("sygnal", "tok", true);
    expect(n).toEqual({ notification: { prio: "high", devices: [{ app_id: "sygnal", pushkey: "tok" }] } });
    expect(gatewayRejected(JSON.stringify({ rejected: ["tok"] }), "tok")).toBe(true);
    expect(gatewayRejected(JSON.stringify({ rejected: [] }), "tok")).toBe(false);
    expect(gatewayRejected("<html>", "tok")).toBe(false);
  });
});
