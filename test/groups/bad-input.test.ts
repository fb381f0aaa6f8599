// What the delivery service refuses, with which code, and that a refusal changes nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApplicationMessage, defaultCapabilities, encodeMlsMessage, generateKeyPackage } from "ts-mls";
import {
  ClaimKeyPackagesDocument,
  CommitGroupDocument,
  GroupDocument,
  KeyPackageStatusDocument,
  SendGroupMessageDocument,
  UploadKeyPackagesDocument,
} from "../../src/client/generated/graphql.ts";
import { b64 } from "../../src/client/base64.ts";
import { credentialFor, mlsSuite } from "../../src/client/mls/key-packages.ts";
import { GraphQLRequestError, type HttpTransport } from "../../src/client/transport.ts";
import { mlsMember, text, type MlsMember } from "../helpers/groups.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

/** "CODE: message" of a refused request. */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof GraphQLRequestError) return `${err.code}: ${err.message}`;
    throw err;
  }
  throw new Error("expected the request to be refused");
}

describe("MLS bad input", () => {
  let server: TestServer;
  let a: MlsMember, b: MlsMember, c: MlsMember;
  let groupId: string;
  let otherGroupId: string;

  // Read straight from the store of the in-process server: the group's event numbering, which only a stored event
  // moves (a count of the rows would also move when the sweeper drops events every device has acknowledged).
  const stored = async () => (await server.app.prisma.group.findUniqueOrThrow({ where: { id: groupId }, select: { lastSeq: true } })).lastSeq;
  const snapshot = async (http: HttpTransport) => {
    const { group } = await http.request(GroupDocument, { id: groupId });
    return { epoch: group!.epoch, memberCount: group!.memberCount, events: await stored() };
  };

  beforeAll(async () => {
    // The tests count stored events: the retention worker (which deletes acknowledged ones) stays out of the way.
    server = await startServer({ MAX_GROUP_MESSAGE_BYTES: "4096", SWEEP_INTERVAL_MS: "3600000" });
    [a, b, c] = await Promise.all([1, 2, 3].map(() => mlsMember(server.url)));
    groupId = await a.mls.createGroup({ name: "g", memberUserIds: [b.userId] });
    await b.mls.sync(groupId);
    otherGroupId = await a.mls.createGroup({ name: "other" });
    await a.mls.sync(groupId);
  }, 180_000);
  afterAll(() => server?.close());

  it("key packages: garbage, another device's credential, an expired lifetime, too many: refused, nothing stored", async () => {
    const cs = await mlsSuite();
    const before = (await c.http.request(KeyPackageStatusDocument)).keyPackageStatus.available;
    const good = b64((await c.mls.keyPackages.generate()).encoded);
    const encode = (kp: Awaited<ReturnType<typeof generateKeyPackage>>) =>
      b64(encodeMlsMessage({ keyPackage: kp.publicPackage, wireformat: "mls_key_package", version: "mls10" }));
    const foreign = encode(await generateKeyPackage(credentialFor(a.address), defaultCapabilities(), { notBefore: 0n, notAfter: 2n ** 40n }, [], cs));
    const expired = encode(await generateKeyPackage(credentialFor(c.address), defaultCapabilities(), { notBefore: 0n, notAfter: 1000n }, [], cs));
    for (const bad of [b64(new Uint8Array([1, 2, 3, 4])), foreign, expired]) {
      expect(await codeOf(c.http.request(UploadKeyPackagesDocument, { keyPackages: [good, bad] }))).toMatch(/^BAD_USER_INPUT: /);
    }
    expect(await codeOf(c.http.request(UploadKeyPackagesDocument, { keyPackages: Array(101).fill(good) }))).toMatch(/^BAD_USER_INPUT: /);
    expect((await c.http.request(KeyPackageStatusDocument)).keyPackageStatus.available).toBe(before);
  });

  it("commits: garbage, another group's, a forged sender, a welcome without adds, an unclaimed key package, a non-admin add, an old epoch", async () => {
    const before = await snapshot(a.http);
    const commitGroup = (http: HttpTransport, input: Record<string, unknown>) =>
      http.request(CommitGroupDocument, { input: input as never });

    // Garbage bytes where an MLSMessage belongs.
    expect(await codeOf(commitGroup(a.http, { groupId, commit: b64(new Uint8Array(64).fill(7)) }))).toMatch(/^BAD_USER_INPUT: commit is not a TLS-encoded MLSMessage/);
    // An application message where a commit belongs.
    const wrongKind = await a.mls.prepareCommit(groupId, { proposals: [] });
    expect(await codeOf(commitGroup(a.http, { ...wrongKind, commit: wrongKind.groupInfo }))).toMatch(/^BAD_USER_INPUT: /);
    // A commit framed for another group, sent to this one.
    const other = await a.mls.prepareCommit(otherGroupId, { proposals: [] });
    expect(await codeOf(commitGroup(a.http, { ...other, groupId }))).toMatch(/^BAD_USER_INPUT: commit is framed for another group/);
    // A forged sender: b sends the commit a's leaf signed.
    const byA = await a.mls.prepareCommit(groupId, { proposals: [] });
    expect(await codeOf(commitGroup(b.http, byA))).toMatch(/^FORBIDDEN: the commit's sender leaf is not this device/);
    // A welcome riding on a commit that adds nobody.
    const welcomeOf = await a.mls.prepareCommit(groupId, {
      proposals: [{ proposalType: "add", add: { keyPackage: (await c.mls.keyPackages.generate()).publicPackage } }],
      addUserIds: [c.userId],
    });
    expect(await codeOf(commitGroup(a.http, { ...byA, welcome: welcomeOf.welcome }))).toMatch(/^BAD_USER_INPUT: a welcome was sent with a commit that adds nobody/);
    // Adding c with a key package nobody claimed from the server.
    expect(await codeOf(commitGroup(a.http, welcomeOf))).toMatch(/^BAD_USER_INPUT: .*not claimed through claimKeyPackages/);
    // A commit without the new GroupInfo.
    expect(await codeOf(commitGroup(a.http, { ...byA, groupInfo: null }))).toMatch(/^BAD_USER_INPUT: /);
    // A member who is not an admin adds someone (with a properly claimed key package).
    const { claimKeyPackages } = await b.http.request(ClaimKeyPackagesDocument, { userIds: [c.userId] });
    expect(claimKeyPackages).toHaveLength(1);
    await expect(b.mls.add(groupId, [c.userId])).rejects.toMatchObject({ code: "FORBIDDEN" });

    expect(await snapshot(a.http)).toEqual(before);

    // An old epoch: after a real commit, a commit built on the previous epoch is stale.
    const stale = await b.mls.prepareCommit(groupId, { proposals: [] });
    await a.mls.update(groupId);
    const err = await b.http.request(CommitGroupDocument, { input: stale }).catch((e) => e as GraphQLRequestError);
    expect(err).toBeInstanceOf(GraphQLRequestError);
    expect((err as GraphQLRequestError).code).toBe("STALE_EPOCH");
    expect((err as GraphQLRequestError).extensions.epoch).toBe(before.epoch + 1);
  });

  it("application messages: garbage, a commit, another group's, an oversized one, a non-member: refused, nothing stored", async () => {
    await b.mls.sync(groupId);
    const before = await stored();
    const send = (http: HttpTransport, gid: string, message: string) => http.request(SendGroupMessageDocument, { groupId: gid, message });
    expect(await codeOf(send(a.http, groupId, b64(new Uint8Array([0, 1, 0, 2, 9]))))).toMatch(/^BAD_USER_INPUT: /);
    const commit = await a.mls.prepareCommit(groupId, { proposals: [] });
    expect(await codeOf(send(a.http, groupId, commit.commit))).toMatch(/^BAD_USER_INPUT: /);
    expect(await codeOf(send(a.http, groupId, commit.welcome ?? commit.groupInfo!))).toMatch(/^BAD_USER_INPUT: /);
    expect(await codeOf(send(a.http, groupId, b64(new Uint8Array(5000))))).toMatch(/^LIMIT_EXCEEDED: /);
    expect(await codeOf(send(c.http, groupId, b64(new Uint8Array(10))))).toMatch(/^BAD_USER_INPUT: /);
    // Framed for the other group, sent to this one.
    const { privateMessage } = await createApplicationMessage((await a.mls.state(otherGroupId))!, text("elsewhere"), await mlsSuite());
    const captured = b64(encodeMlsMessage({ privateMessage, wireformat: "mls_private_message", version: "mls10" }));
    expect(await codeOf(send(a.http, groupId, captured))).toMatch(/^BAD_USER_INPUT: message is framed for another group/);
    // A real message from a non-member: c has no state, so c reuses a's bytes.
    expect(await codeOf(send(c.http, groupId, captured))).toMatch(/^NOT_FOUND: /);
    expect(await stored()).toBe(before);
  });
});
