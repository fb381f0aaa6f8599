// The pure attachment rules: ids, sizes, byte ranges, tus headers.
import { describe, expect, it } from "vitest";
import { checkSize, checkTusHeaders, isAttachmentId, newAttachmentId, parseRange, quotaDay } from "../../src/attachments/rules.ts";

describe("attachment rules", () => {
  it("makes distinct ids of 144 random bits that match the pattern, and rejects anything else", () => {
    const ids = new Set(Array.from({ length: 1000 }, newAttachmentId));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(isAttachmentId(id)).toBe(true);
    for (const bad of ["", "a", "../../etc/passwd/aaaaaaa", "A".repeat(23), "A".repeat(25), "AAAAAAAAAAAAAAAAAAAAAAA="]) {
      expect(isAttachmentId(bad)).toBe(false);
    }
  });

  it("bounds sizes", () => {
    expect(checkSize(1, 10)).toBeNull();
    expect(checkSize(10, 10)).toBeNull();
    expect(checkSize(11, 10)?.code).toBe("LIMIT_EXCEEDED");
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(checkSize(bad, 10)?.code).toBe("BAD_USER_INPUT");
  });

  it("counts quotas per UTC day", () => {
    expect(quotaDay(new Date("2026-12-01T23:59:59Z"))).toBe("2026-12-01");
    expect(quotaDay(new Date("2026-12-02T00:00:00Z"))).toBe("2026-12-02");
  });

  it("parses one byte range", () => {
    expect(parseRange(undefined, 100)).toBe("none");
    expect(parseRange("bytes=0-9", 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange("bytes=90-", 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange("bytes=90-500", 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange("bytes=-10", 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange("bytes=-500", 100)).toEqual({ start: 0, end: 99 });
    expect(parseRange("bytes=100-", 100)).toBe("unsatisfiable");
    expect(parseRange("bytes=5-4", 100)).toBe("unsatisfiable");
    expect(parseRange("bytes=-0", 100)).toBe("unsatisfiable");
    expect(parseRange("bytes=0-1,5-6", 100)).toBe("none");
    expect(parseRange("items=0-1", 100)).toBe("unsatisfiable");
  });

  it("checks tus headers before @tus/server sees them", () => {
    const ok = { "tus-resumable": "1.0.0", "upload-offset": "0", "content-type": "application/offset+octet-stream" };
    expect(checkTusHeaders("PATCH", ok)).toBeNull();
    expect(checkTusHeaders("HEAD", { "tus-resumable": "1.0.0" })).toBeNull();
    expect(checkTusHeaders("PATCH", { ...ok, "tus-resumable": "0.2.2" })?.status).toBe(412);
    expect(checkTusHeaders("PATCH", { ...ok, "upload-offset": "-1" })?.status).toBe(400);
    expect(checkTusHeaders("PATCH", { ...ok, "upload-offset": "1e3" })?.status).toBe(400);
    expect(checkTusHeaders("PATCH", { ...ok, "upload-offset": undefined })?.status).toBe(400);
    expect(checkTusHeaders("PATCH", { ...ok, "content-type": "text/plain" })?.status).toBe(415);
    expect(checkTusHeaders("PATCH", { ...ok, "upload-length": "5" })?.status).toBe(400);
  });
});
