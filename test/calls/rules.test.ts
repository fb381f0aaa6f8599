// The TURN REST API credential rules, pure: username layout, expiry arithmetic, and the HMAC-SHA1 password checked
// against a vector made independently with `openssl dgst -sha1 -hmac`.
import { describe, expect, it } from "vitest";
import { turnCredential, turnPassword, usernameExpiry } from "../../src/calls/rules.ts";

const SECRET = "a-test-secret-of-some-length";
const USER = "0b6f2a1e-5c3d-4e8f-9a7b-1c2d3e4f5a6b";

describe("TURN REST API credentials", () => {
  it("username is <now + ttl, in unix seconds>:<userId>, the password base64(HMAC-SHA1(secret, username))", () => {
    const c = turnCredential(SECRET, USER, 1_796_159_400_999, 600);
    expect(c.username).toBe(`1796160000:${USER}`);
    // echo -n "1796160000:<user>" | openssl dgst -sha1 -hmac "a-test-secret-of-some-length" -binary | base64
    expect(c.credential).toBe("E3isDggsYhZZpAXVzeVljotGAOo=");
    expect(c.expiresAt.toISOString()).toBe(new Date(1_796_160_000_000).toISOString());
    expect(usernameExpiry(c.username)).toBe(1_796_160_000);
  });

  it("another secret, user or time gives another password", () => {
    const base = turnCredential(SECRET, USER, 1_000_000_000_000, 60).credential;
    expect(turnCredential(SECRET + "x", USER, 1_000_000_000_000, 60).credential).not.toBe(base);
    expect(turnCredential(SECRET, USER.replace("0b", "0c"), 1_000_000_000_000, 60).credential).not.toBe(base);
    expect(turnCredential(SECRET, USER, 1_000_000_001_000, 60).credential).not.toBe(base);
    expect(turnPassword(SECRET, `1000000060:${USER}`)).toBe(base);
  });

  it("refuses a user part with the separator and a non-positive lifetime", () => {
    expect(() => turnCredential(SECRET, "a:b", 0, 60)).toThrow(RangeError);
    expect(() => turnCredential(SECRET, "", 0, 60)).toThrow(RangeError);
    expect(() => turnCredential(SECRET, USER, 0, 0)).toThrow(RangeError);
    expect(() => turnCredential(SECRET, USER, 0, 1.5)).toThrow(RangeError);
    expect(usernameExpiry("nouser")).toBeNull();
  });
});
