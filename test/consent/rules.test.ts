// Consent's pure rules: who sees whose presence, and the bounds of a report's text.
import { describe, expect, it } from "vitest";
import { maySeePresence, reportText, type PresenceVisibility } from "../../src/consent/rules.ts";

const r = (visibility: PresenceVisibility, accepted = false, blocked = false) => ({ visibility, accepted, blocked });

describe("consent rules", () => {
  it("presence: own always; blocked and NOBODY never; CONTACTS to the accepted and group mates; EVERYONE to others", () => {
    expect(maySeePresence("a", "a", r("NOBODY", false, true), false)).toBe(true);
    for (const v of ["EVERYONE", "CONTACTS", "NOBODY"] as const) {
      expect(maySeePresence("v", "t", r(v, true, true), true)).toBe(false);
    }
    expect(maySeePresence("v", "t", r("NOBODY", true), true)).toBe(false);
    expect(maySeePresence("v", "t", r("CONTACTS"), false)).toBe(false);
    expect(maySeePresence("v", "t", r("CONTACTS", true), false)).toBe(true);
    expect(maySeePresence("v", "t", r("CONTACTS"), true)).toBe(true);
    expect(maySeePresence("v", "t", r("EVERYONE"), false)).toBe(true);
  });

  it("report text: trimmed, empty is absent, over the bound refused", () => {
    expect(reportText("  spam ", 10, "reason")).toBe("spam");
    expect(reportText("   ", 10, "reason")).toBeNull();
    expect(reportText(null, 10, "reason")).toBeNull();
    expect(() => reportText("x".repeat(11), 10, "reason")).toThrow(/at most 10/);
  });
});
