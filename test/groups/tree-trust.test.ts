// The server trusts a posted ratchet tree to map leaves to devices only after checking it: a member that swaps two
// leaves' credentials (same set of devices, so the roster check alone would pass) is refused, whether it leaves the
// GroupContext's tree hash as it was or recomputes it (then the swapped leaves' signatures fail). Real ts-mls.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGroupInfoWithExternalPubAndRatchetTree, decodeGroupState, encodeMlsMessage, type ClientState } from "ts-mls";
import { defaultClientConfig } from "ts-mls/clientConfig.js";
import { treeHashRoot } from "ts-mls/treeHash.js";
import { CommitGroupDocument, GroupDocument } from "../../src/client/generated/graphql.ts";
import { b64 } from "../../src/client/base64.ts";
import { mlsSuite } from "../../src/client/mls/key-packages.ts";
import { GraphQLRequestError } from "../../src/client/transport.ts";
import { mlsMember, type MlsMember } from "../helpers/groups.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

describe("ratchet tree trust", () => {
  let server: TestServer;
  let a: MlsMember, b: MlsMember;
  let groupId: string;

  beforeAll(async () => {
    server = await startServer();
    [a, b] = await Promise.all([mlsMember(server.url), mlsMember(server.url)]);
    groupId = await a.mls.createGroup({ name: "trust", memberUserIds: [b.userId] });
  }, 120_000);
  afterAll(() => server?.close());

  /** An empty commit by a, with a GroupInfo whose tree has leaves 0 and 1 swapped, signed by a. */
  async function forged(fixTreeHash: boolean) {
    const input = await a.mls.prepareCommit(groupId, { proposals: [] });
    const raw = await (a.mls as unknown as { kv: { get(k: string): Promise<Uint8Array | undefined> } }).kv.get(`mls:pending:${groupId}`);
    const state = { ...decodeGroupState(raw!, 0)![0], clientConfig: defaultClientConfig } as ClientState;
    const tree = [...state.ratchetTree];
    [tree[0], tree[2]] = [tree[2], tree[0]];
    const cs = await mlsSuite();
    const groupContext = fixTreeHash ? { ...state.groupContext, treeHash: await treeHashRoot(tree, cs.hash) } : state.groupContext;
    // a's leaf now sits at index 1: a signs as that leaf, so the GroupInfo signature itself holds.
    const privatePath = { ...state.privatePath, leafIndex: 1 };
    const info = await createGroupInfoWithExternalPubAndRatchetTree({ ...state, ratchetTree: tree, groupContext, privatePath } as ClientState, [], cs);
    return { ...input, groupInfo: b64(encodeMlsMessage({ groupInfo: info, wireformat: "mls_group_info", version: "mls10" })) };
  }

  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => "accepted",
      (e) => (e instanceof GraphQLRequestError ? `${e.code}: ${e.message}` : String(e)),
    );

  it("refuses a remapped tree: tree hash mismatch, or (hash recomputed) bad leaf signatures; the honest commit passes", async () => {
    expect(await refusal(a.http.request(CommitGroupDocument, { input: await forged(false) }))).toMatch(
      /^BAD_USER_INPUT: groupInfo: the ratchet tree does not match the group context's tree hash/,
    );
    expect(await refusal(a.http.request(CommitGroupDocument, { input: await forged(true) }))).toMatch(
      /^BAD_USER_INPUT: groupInfo: leaf [01] has a bad signature/,
    );
    const { group } = await a.http.request(GroupDocument, { id: groupId });
    expect(group!.epoch).toBe(1);
    expect(await a.mls.update(groupId)).toBe(2);
  });
});
