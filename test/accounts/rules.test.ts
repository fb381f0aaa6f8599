// The primary-device rule, on its own.
import { describe, expect, it } from "vitest";
import { isPrimary, mayDeactivate } from "../../src/accounts/rules.ts";

describe("primary-device authority", () => {
  const u = "00000000-0000-4000-8000-000000000001";
  it("only device 1 is primary", () => {
    expect(isPrimary({ userId: u, deviceId: 1 })).toBe(true);
    expect(isPrimary({ userId: u, deviceId: 2 })).toBe(false);
  });
  it("a device removes itself; only the primary removes another", () => {
    expect(mayDeactivate({ userId: u, deviceId: 3 }, 3)).toBe(true);
    expect(mayDeactivate({ userId: u, deviceId: 1 }, 1)).toBe(true);
    expect(mayDeactivate({ userId: u, deviceId: 1 }, 5)).toBe(true);
    expect(mayDeactivate({ userId: u, deviceId: 2 }, 1)).toBe(false);
    expect(mayDeactivate({ userId: u, deviceId: 2 }, 3)).toBe(false);
  });
});
