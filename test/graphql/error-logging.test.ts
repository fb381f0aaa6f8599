// What the log keeps of a resolver's unexpected error: its name, code, frames and a message with key material,
// tokens and ciphertext scrubbed (a driver's error can quote the values it failed on); the caller gets a masked
// INTERNAL_SERVER_ERROR.
import { randomBytes } from "node:crypto";
import { GraphQLError } from "graphql";
import { describe, expect, it } from "vitest";
import { createErrorMasker } from "../../src/graphql/error-masking.ts";
import { createLogger } from "../../src/logger.ts";

function captured() {
  const lines: string[] = [];
  return { lines, logger: createLogger("info", { write: (s: string) => void lines.push(s) }) };
}

describe("resolver errors in the log", () => {
  const token = `vgt_${randomBytes(32).toString("base64url")}`;
  const ciphertext = randomBytes(300).toString("base64");
  const key = randomBytes(32).toString("hex");

  it("scrub tokens, keys and ciphertext from an unexpected error's message and drop its other properties", () => {
    const { lines, logger } = captured();
    const err = Object.assign(
      new Error(`Invalid \`prisma.message.create()\` invocation: { token: "${token}", body: "${ciphertext}", identityKey: "${key}" } for user 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d`),
      { code: "P2000", meta: { args: { body: ciphertext } } },
    );
    const masked = createErrorMasker(logger)(new GraphQLError("boom", { originalError: err }), "Unexpected error.");
    expect(masked.extensions.code).toBe("INTERNAL_SERVER_ERROR");
    expect(masked.message).toBe("Unexpected error.");
    expect(lines).toHaveLength(1);
    const line = lines[0];
    for (const secret of [token, ciphertext, key, ciphertext.slice(0, 40)]) expect(line).not.toContain(secret);
    const logged = JSON.parse(line);
    expect(logged.msg).toBe("unexpected error in a resolver");
    expect(logged.err).toMatchObject({ name: "Error", code: "P2000" });
    // What helps an operator stays: the operation that failed, the ids, where it failed.
    expect(logged.err.message).toContain("prisma.message.create()");
    expect(logged.err.message).toContain("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
    expect(logged.err.message).toContain("[redacted]");
    expect(logged.err.stack).toMatch(/^\s+at /);
    expect(logged.err.meta).toBeUndefined();
  });

  it("scrub an outage's driver message too", () => {
    const { lines, logger } = captured();
    const err = Object.assign(new Error(`Connection terminated while sending ${ciphertext}`), { code: "ECONNRESET" });
    expect(createErrorMasker(logger)(err, "Unexpected error.").extensions.code).toBe("UNAVAILABLE");
    expect(lines.join("")).not.toContain(ciphertext.slice(0, 40));
  });
});
