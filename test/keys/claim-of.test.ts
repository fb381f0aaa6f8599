// What a pre-key claim names, read before it reaches the batch (claimOf in src/keys/claims.ts): the user in its one
// spelling, a device libsignal can address or none; anything else is BAD_USER_INPUT and claims nothing.
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/errors.ts";
import { isDeviceId } from "../../src/ids.ts";
import { claimOf } from "../../src/keys/claims.ts";

const user = "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D";
const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e instanceof AppError ? e.code : "not an AppError";
  }
  return "accepted";
};

describe("claimOf", () => {
  it("names the user in lower case, and all their devices unless one is asked for", () => {
    expect(claimOf(user, undefined)).toEqual({ userId: user.toLowerCase(), deviceId: null });
    expect(claimOf(user, null)).toEqual({ userId: user.toLowerCase(), deviceId: null });
    expect(claimOf(user, 127)).toEqual({ userId: user.toLowerCase(), deviceId: 127 });
  });

  it("refuses a user id that is not a UUID and a device id libsignal cannot address", () => {
    for (const bad of ["bob", "'; DROP TABLE users; --", `${user}0`, ""]) expect(code(() => claimOf(bad, null)), bad).toBe("BAD_USER_INPUT");
    for (const bad of [0, -1, 128, 1.5, Number.NaN]) expect(code(() => claimOf(user, bad)), String(bad)).toBe("BAD_USER_INPUT");
  });

  it("isDeviceId holds for 1 to 127 only", () => {
    expect([1, 64, 127].every(isDeviceId)).toBe(true);
    expect([0, 128, 2.5, -3].some(isDeviceId)).toBe(false);
  });
});
