// Property tests of the server's parsers of client-supplied bytes (src/keys/parse.ts, the Bytes scalar):
// random and mutated inputs either parse or are refused with BAD_USER_INPUT; nothing else is ever thrown, nothing
// hangs, and a mutated signature never verifies. Then the same mutations through HTTP: never a 5xx or an
// INTERNAL_SERVER_ERROR. The delivery service's MLS framing readers (src/groups/mls-framing.ts) get the same.
import fc from "fast-check";
import { GraphQLError } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegisterAccountDocument } from "../../src/client/generated/graphql.ts";
import { MemoryKeyValueStore } from "../../src/client/signal/kv.ts";
import { SignalDevice } from "../../src/client/signal/device.ts";
import { queryText } from "../../src/client/transport.ts";
import { AppError } from "../../src/errors.ts";
import { schema } from "../../src/graphql/index.ts";
import {
  checkBatch,
  checkEcPreKey,
  checkSignedEcPreKey,
  checkSignedKyberPreKey,
  parseIdentityKey,
} from "../../src/keys/parse.ts";
import {
  checkKeyPackage,
  checkWelcome,
  parseApplicationMessage,
  parseCommit,
  parseGroupInfo,
} from "../../src/groups/mls-framing.ts";
import { postRaw } from "../helpers/graphql.ts";
import { mlsMember } from "../helpers/groups.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { b64 } from "../../src/client/base64.ts";
import { useServer } from "../helpers/fixture.ts";

const u8 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));

/** The async form of acceptsOrRefusesCleanly. */
async function acceptsOrRefusesCleanlyAsync(fn: () => Promise<unknown>): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch (err) {
    if (err instanceof AppError && err.code === "BAD_USER_INPUT") return false;
    throw new Error(`unexpected ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
  }
}

/** Runs fn; passes if it returns or throws a BAD_USER_INPUT AppError; returns whether it accepted. */
function acceptsOrRefusesCleanly(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    if (err instanceof AppError && err.code === "BAD_USER_INPUT") return false;
    throw new Error(`unexpected ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
  }
}

// Mutations of a valid value: flip bits, truncate, extend, splice random bytes, or replace it wholesale.
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const mutated = (valid: Uint8Array) =>
  fc.oneof(
    fc.array(fc.nat({ max: valid.length * 8 - 1 }), { minLength: 1, maxLength: 8 }).map((bits) => {
      const out = valid.slice();
      for (const b of bits) out[b >> 3] ^= 1 << (b & 7);
      return out;
    }),
    fc.nat({ max: valid.length - 1 }).map((n) => valid.slice(0, n)),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((tail) => new Uint8Array([...valid, ...tail])),
    fc.tuple(fc.nat({ max: valid.length }), fc.uint8Array({ maxLength: 16 })).map(([at, bytes]) => {
      const out = valid.slice();
      out.set(bytes.slice(0, out.length - at), at);
      return out;
    }),
    fc.uint8Array({ maxLength: 2_000 }),
  ).filter((m) => !same(m, valid));

describe("Signal key parsers under random and mutated input", () => {
  let keys: Awaited<ReturnType<SignalDevice["registrationKeys"]>>;
  let identity: ReturnType<typeof parseIdentityKey>;
  beforeAll(async () => {
    const device = await SignalDevice.open(new MemoryKeyValueStore());
    keys = await device.registrationKeys(1);
    identity = parseIdentityKey(u8(keys.identityKey) as Uint8Array<ArrayBuffer>);
  });

  it("identity keys: parse or BAD_USER_INPUT", () => {
    fc.assert(
      fc.property(mutated(u8(keys.identityKey)), (bytes) => {
        acceptsOrRefusesCleanly(() => parseIdentityKey(bytes as Uint8Array<ArrayBuffer>));
      }),
      { numRuns: 2_000 },
    );
  });

  it("one-time EC pre-keys, with any key id: parse or BAD_USER_INPUT", () => {
    const valid = u8(keys.oneTimePreKeys![0].publicKey);
    fc.assert(
      fc.property(mutated(valid), fc.oneof(fc.integer(), fc.double()), (publicKey, keyId) => {
        acceptsOrRefusesCleanly(() => checkEcPreKey({ keyId, publicKey: publicKey as Uint8Array<ArrayBuffer> }, "k"));
      }),
      { numRuns: 2_000 },
    );
  });

  it("signed EC pre-keys: a mutated key or signature never verifies", () => {
    const pub = u8(keys.signedPreKey.publicKey);
    const sig = u8(keys.signedPreKey.signature);
    const { keyId } = keys.signedPreKey;
    expect(acceptsOrRefusesCleanly(() => checkSignedEcPreKey(identity, { keyId, publicKey: pub as never, signature: sig as never }, "k"))).toBe(true);
    fc.assert(
      fc.property(fc.boolean(), mutated(pub), mutated(sig), (which, p, s) => {
        const key = which ? { keyId, publicKey: p, signature: sig } : { keyId, publicKey: pub, signature: s };
        const accepted = acceptsOrRefusesCleanly(() => checkSignedEcPreKey(identity, key as never, "k"));
        expect(accepted).toBe(false);
      }),
      { numRuns: 1_000 },
    );
  });

  it("signed Kyber pre-keys: parse or BAD_USER_INPUT, and a mutated one never verifies", () => {
    const pub = u8(keys.lastResortKyberPreKey.publicKey);
    const sig = u8(keys.lastResortKyberPreKey.signature);
    const { keyId } = keys.lastResortKyberPreKey;
    fc.assert(
      fc.property(fc.boolean(), mutated(pub), mutated(sig), (which, p, s) => {
        const key = which ? { keyId, publicKey: p, signature: sig } : { keyId, publicKey: pub, signature: s };
        expect(acceptsOrRefusesCleanly(() => checkSignedKyberPreKey(identity, key as never, "k"))).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it("batches: any list of key ids is accepted or refused cleanly", () => {
    fc.assert(
      fc.property(fc.array(fc.integer(), { maxLength: 300 }), (ids) => {
        acceptsOrRefusesCleanly(() => checkBatch(ids.map((keyId) => ({ keyId, publicKey: new Uint8Array() as never })), "k"));
      }),
      { numRuns: 500 },
    );
  });

  it("the Bytes scalar: any string or JSON value parses or is a BAD_USER_INPUT GraphQLError", () => {
    const bytes = schema.getType("Bytes") as unknown as { parseValue(v: unknown): unknown };
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.base64String({ maxLength: 200 }), fc.jsonValue()), (v) => {
        try {
          const out = bytes.parseValue(v);
          expect(out).toBeInstanceOf(Uint8Array);
          // What is accepted is canonical base64: it round-trips.
          expect(b64(out as Uint8Array)).toBe(v);
        } catch (err) {
          expect(err).toBeInstanceOf(GraphQLError);
          expect((err as GraphQLError).extensions.code).toBe("BAD_USER_INPUT");
        }
      }),
      { numRuns: 3_000 },
    );
  });
});

describe("mutated registrations over HTTP", () => {
  const server = useServer();

  it("never answers 5xx or INTERNAL_SERVER_ERROR, whatever key bytes and numbers arrive", async () => {
    const device = await SignalDevice.open(new MemoryKeyValueStore());
    const keys = await device.registrationKeys(2);
    const fields = ["identityKey", "signedPreKey.publicKey", "signedPreKey.signature", "lastResortKyberPreKey.publicKey", "lastResortKyberPreKey.signature", "oneTimePreKeys.0.publicKey", "oneTimeKyberPreKeys.1.signature"];
    const outcomes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...fields),
        fc.uint8Array({ maxLength: 1_700 }),
        fc.oneof(fc.constant(undefined), fc.integer(), fc.constant(-1), fc.constant(2 ** 31)),
        async (field, bytes, number) => {
          const input = structuredClone(keys) as unknown as Record<string, unknown>;
          const path = field.split(".");
          let at = input as Record<string, unknown>;
          for (const p of path.slice(0, -1)) at = at[p] as Record<string, unknown>;
          at[path[path.length - 1]] = b64(bytes);
          if (number !== undefined) input.registrationId = number;
          const r = await postRaw(server.url, { query: queryText(RegisterAccountDocument), variables: { input: { keys: input } } });
          const code = r.errors?.[0]?.extensions?.code ?? "OK";
          outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
          expect(r.status).toBeLessThan(500);
          expect(code).not.toBe("INTERNAL_SERVER_ERROR");
        },
      ),
      { numRuns: 150 },
    );
    // Random bytes are refused, not stored.
    expect(outcomes.get("BAD_USER_INPUT")).toBeGreaterThan(100);
  });
});

describe("MLS framing readers under random and mutated input", () => {
  let server: TestServer;
  let samples: { commit: Uint8Array; groupInfo: Uint8Array; keyPackage: Uint8Array };
  let owner: { userId: string; deviceId: number };
  beforeAll(async () => {
    server = await startServer();
    const a = await mlsMember(server.url);
    const groupId = await a.mls.createGroup({ name: "fuzz" });
    const plain = await a.mls.prepareCommit(groupId, { proposals: [] });
    samples = {
      commit: u8(plain.commit),
      groupInfo: u8(plain.groupInfo!),
      keyPackage: (await a.mls.keyPackages.generate()).encoded,
    };
    owner = a.address;
  });
  afterAll(() => server.close());

  // A welcome needs joiners' claimed key packages to build; the welcome reader gets the same mutated bytes instead.
  it("commits, application messages and welcomes: decode or BAD_USER_INPUT", () => {
    expect(acceptsOrRefusesCleanly(() => parseCommit(samples.commit))).toBe(true);
    fc.assert(
      fc.property(mutated(samples.commit), (bytes) => {
        acceptsOrRefusesCleanly(() => parseCommit(bytes));
        acceptsOrRefusesCleanly(() => parseApplicationMessage(bytes));
        acceptsOrRefusesCleanly(() => checkWelcome(bytes));
      }),
      { numRuns: 1_500 },
    );
  });

  it("group infos: parse or BAD_USER_INPUT", async () => {
    expect(await acceptsOrRefusesCleanlyAsync(() => parseGroupInfo(samples.groupInfo))).toBe(true);
    await fc.assert(
      fc.asyncProperty(mutated(samples.groupInfo), async (bytes) => {
        await acceptsOrRefusesCleanlyAsync(() => parseGroupInfo(bytes));
      }),
      { numRuns: 400 },
    );
  });

  it("key packages: the valid one is accepted, no mutation of it ever is", async () => {
    expect(await acceptsOrRefusesCleanlyAsync(() => checkKeyPackage(samples.keyPackage, owner, "kp"))).toBe(true);
    await fc.assert(
      fc.asyncProperty(mutated(samples.keyPackage), async (bytes) => {
        expect(await acceptsOrRefusesCleanlyAsync(() => checkKeyPackage(bytes, owner, "kp"))).toBe(false);
      }),
      { numRuns: 400 },
    );
  });
});
