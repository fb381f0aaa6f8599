// Hostile ids over every operation that takes one, found from the schema (a new operation is swept from its first
// day): decimals past int64, a 16-digit cursor, a "uuid" of 36 dashes, group ids of dashes, seqs past int64. Each
// must answer BAD_USER_INPUT (never INTERNAL_SERVER_ERROR, never a 5xx), over HTTP and graphql-ws alike.
import { randomUUID } from "node:crypto";
import {
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isScalarType,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputType,
} from "graphql";
import { beforeAll, describe, expect, it } from "vitest";
import { PollInboxDocument } from "../../src/client/generated/graphql.ts";
import { openWs } from "../../src/client/transport.ts";
import { schema } from "../../src/graphql/index.ts";
import { useServer } from "../helpers/fixture.ts";
import { postRaw } from "../helpers/graphql.ts";
import { mlsMember, type MlsMember } from "../helpers/groups.ts";
import { subscribeOnce } from "../helpers/live.ts";
import { sendOpaque } from "../helpers/messaging.ts";

const DASHES = "-".repeat(36);
const HOSTILE_IDS = [
  "99999999999999999999", // decimal past int64
  "9223372036854775808", // int64 max + 1
  "9999999999999999", // 16 digits
  DASHES,
  `g:${DASHES}:1`,
  `g:${randomUUID()}:99999999999999999999`,
  `g:${randomUUID()}:-1`,
  "live:" + DASHES,
];
const HOSTILE_CURSORS = ["9999999999999999", "9223372036854775808", `9999999999999999_${randomUUID()}`, `1_${DASHES}`, "99999999999999999999", "-1"];
const HOSTILE_INTS = [-1, 2 ** 31 - 1, -(2 ** 31)];

// ID fields whose value is an opaque string the server only compares (any 1-64 characters is a valid one).
const OPAQUE_IDS = new Set(["sendMessage.input.clientMessageId"]);
// Hostile-looking values that are valid here: 16 digits is a queue id or sequence number that fits int64 (nothing has
// it: an empty page, 0 acknowledged), and a live-only envelope's id is acknowledged as a no-op by design.
const VALID_HERE = new Set([
  "inbox.after=9999999999999999",
  "messages.after=9999999999999999",
  "messages.before=9999999999999999",
  "ackEnvelopes.ids=9999999999999999",
  `ackEnvelopes.ids=live:${DASHES}`,
]);
// Int arguments for which a large or negative value is a valid, if useless, request: any clear answer will do.
const LENIENT_INTS = new Set(["pendingGroupEvents.afterSeq"]);

type Slot = { path: string[]; kind: "id" | "cursor" | "int"; name: string };

// Real things of the caller's, by argument name, so that a hostile cursor or id meets a conversation or group that
// exists (a random one would stop at NOT_FOUND before the value under test is read).
const real: Record<string, string> = {};

/** A value that passes GraphQL's own coercion for the type (required parts only). */
function placeholder(t: GraphQLInputType, name = ""): unknown {
  if (isNonNullType(t)) return placeholder(t.ofType, name);
  if (isListType(t)) return [placeholder(t.ofType, name)];
  const n = getNamedType(t);
  if (isEnumType(n)) return n.getValues()[0].value;
  if (isInputObjectType(n)) {
    const o: Record<string, unknown> = {};
    for (const f of Object.values(n.getFields())) if (isNonNullType(f.type)) o[f.name] = placeholder(f.type, f.name);
    return o;
  }
  if (isScalarType(n)) {
    return { ID: real[name] ?? randomUUID(), String: "x", Int: 1, Boolean: false, Bytes: "AAAA", DateTime: new Date().toISOString() }[n.name] ?? "x";
  }
  return null;
}

/** Where a hostile value can go: ID arguments and fields (nested), cursors, Int arguments. */
function slotsOf(field: GraphQLField<unknown, unknown>): Slot[] {
  const out: Slot[] = [];
  const walk = (path: string[], t: GraphQLInputType, depth: number) => {
    const n = getNamedType(t);
    if (isInputObjectType(n) && depth < 3) {
      for (const f of Object.values(n.getFields())) walk([...path, f.name], f.type, depth + 1);
    } else if (n.name === "ID") out.push({ path, kind: "id", name: `${field.name}.${path.join(".")}` });
    else if (n.name === "String" && /^(after|before)$/.test(path.at(-1)!)) out.push({ path, kind: "cursor", name: `${field.name}.${path.join(".")}` });
    else if (n.name === "Int" && depth === 0) out.push({ path, kind: "int", name: `${field.name}.${path.join(".")}` });
  };
  for (const a of field.args) walk([a.name], a.type, 0);
  return out;
}

function variables(args: readonly GraphQLArgument[], slot: Slot, value: unknown): Record<string, unknown> {
  const vars: Record<string, unknown> = {};
  for (const a of args) if (isNonNullType(a.type) || a.name === slot.path[0]) vars[a.name] = placeholder(a.type, a.name);
  // Walk to the slot, materialising optional objects on the way; a list slot gets a list of the hostile value.
  let holder = vars as Record<string, unknown>;
  let type: GraphQLInputType = args.find((a) => a.name === slot.path[0])!.type;
  for (let i = 0; i < slot.path.length; i++) {
    const key = slot.path[i];
    if (i > 0) type = (getNamedType(type) as { getFields(): Record<string, { type: GraphQLInputType }> }).getFields()[key].type;
    if (i === slot.path.length - 1) {
      holder[key] = listDepth(type) > 0 ? [value] : value;
    } else {
      let next = holder[key] ?? placeholder(type, key);
      if (Array.isArray(next)) next = next[0];
      holder[key] = listDepth(type) > 0 ? [next] : next;
      holder = next as Record<string, unknown>;
    }
  }
  return vars;
}

function listDepth(t: GraphQLInputType): number {
  if (isNonNullType(t)) return listDepth(t.ofType);
  return isListType(t) ? 1 + listDepth(t.ofType) : 0;
}

function document(kind: "query" | "mutation" | "subscription", field: GraphQLField<unknown, unknown>): string {
  const decl = field.args.map((a) => `$${a.name}: ${a.type.toString()}`).join(", ");
  const pass = field.args.map((a) => `${a.name}: $${a.name}`).join(", ");
  const t = getNamedType(field.type);
  const selection = isScalarType(t) || isEnumType(t) ? "" : " { __typename }";
  return `${kind}${decl ? `(${decl})` : ""} { ${field.name}${pass ? `(${pass})` : ""}${selection} }`;
}

function hostileValues(slot: Slot): unknown[] {
  return slot.kind === "id" ? HOSTILE_IDS : slot.kind === "cursor" ? HOSTILE_CURSORS : HOSTILE_INTS;
}

const roots = () =>
  (
    [
      ["query", schema.getQueryType()],
      ["mutation", schema.getMutationType()],
      ["subscription", schema.getSubscriptionType()],
    ] as const
  ).flatMap(([kind, type]) => Object.values(type?.getFields() ?? {}).map((field) => ({ kind, field, slots: slotsOf(field) })));

describe("hostile ids", () => {
  const server = useServer({ RATE_LIMITS: "off" });
  let alice: MlsMember;
  beforeAll(async () => {
    [alice] = await Promise.all([mlsMember(server.url)]);
    const bob = await mlsMember(server.url);
    await sendOpaque(alice, bob.userId, "hi");
    const { inbox } = await bob.http.request(PollInboxDocument, {});
    const conversationId = inbox.flatMap((e) => (e.__typename === "EnvelopeEvent" ? [e.envelope.conversationId] : []))[0];
    const groupId = await alice.mls.createGroup({ name: "g", memberUserIds: [bob.userId] });
    Object.assign(real, { conversationId, groupId, userId: bob.userId, userIds: bob.userId, recipientUserId: bob.userId });
  }, 120_000);

  it("every id, cursor and Int argument of every operation refuses hostile values with BAD_USER_INPUT", { timeout: 300_000 }, async () => {
    const failures: string[] = [];
    const codes = new Map<string, number>();
    let cases = 0;
    const ws = openWs(server.url, alice.token);
    try {
      for (const { kind, field, slots } of roots()) {
        for (const slot of slots) {
          for (const value of hostileValues(slot)) {
            if (slot.kind === "id" && OPAQUE_IDS.has(slot.name)) continue;
            const vars = variables(field.args, slot, value);
            const query = document(kind, field);
            const { status, code } =
              kind === "subscription"
                ? { status: 200, code: await subscribeOnce(ws, query, vars) }
                : await postRaw(server.url, { query, variables: vars }, alice.token).then((r) => ({
                    status: r.status,
                    code: (r.errors?.[0]?.extensions?.code as string | undefined) ?? "data",
                  }));
            cases++;
            codes.set(code, (codes.get(code) ?? 0) + 1);
            const lenient =
              VALID_HERE.has(`${slot.name}=${value}`) || (slot.kind === "int" && (LENIENT_INTS.has(slot.name) || value === 2 ** 31 - 1));
            const ok = status < 500 && code !== "INTERNAL_SERVER_ERROR" && (lenient || code === "BAD_USER_INPUT");
            if (!ok) failures.push(`${kind} ${slot.name} = ${JSON.stringify(value)}: ${status} ${code}`);
          }
        }
      }
    } finally {
      await ws.dispose();
    }
    console.log(`hostile ids: ${cases} cases, answers ${JSON.stringify(Object.fromEntries(codes))}`);
    expect(failures).toEqual([]);
    expect(cases).toBeGreaterThan(150);
  });
});
