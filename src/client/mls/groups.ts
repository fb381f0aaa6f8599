// The SDK's MLS group manager over ts-mls: create, add, remove, leave, rename, send, and the processing of group
// events in the server's order. Group state is persisted (encodeGroupState) in the device's KeyValueStore after every
// change. A commit takes effect locally only once the server accepted it; on STALE_EPOCH the manager processes the
// commits it missed and builds its change again on the new epoch.
import {
  acceptAll,
  createApplicationMessage,
  createCommit,
  createGroup,
  createGroupInfoWithExternalPubAndRatchetTree,
  decodeGroupState,
  decodeMlsMessage,
  emptyPskIndex,
  encodeGroupState,
  encodeMlsMessage,
  joinGroup,
  processMessage,
  type ClientState,
  type Proposal,
} from "ts-mls";
import { defaultClientConfig } from "ts-mls/clientConfig.js";
import {
  AckGroupEventsDocument,
  ClaimKeyPackagesDocument,
  CommitGroupDocument,
  CreateGroupDocument,
  LeaveGroupDocument,
  PendingGroupEventsDocument,
  SendGroupMessageDocument,
  UpdateGroupDocument,
  type GroupCommitInput as CommitGroupInput,
  type GroupEventKind,
} from "../generated/graphql.ts";
import type { KeyValueStore } from "../signal/kv.ts";
import { GraphQLRequestError, type HttpTransport } from "../transport.ts";
import { b64, unb64 } from "../base64.ts";
import { identityOf, mlsSuite, MlsKeyPackages, type MlsIdentity } from "./key-packages.ts";

/** A group event as the server sends it (subscription `groupEvents` or query `pendingGroupEvents`). */
export interface GroupEventData {
  id: string;
  groupId: string;
  seq: number;
  kind: GroupEventKind;
  epoch: number;
  senderUserId?: string | null;
  senderDeviceId?: number | null;
  message?: string | null;
  serverTimestamp?: string | null;
  refersTo?: string | null;
}

/** What processing an event meant for this device. */
export interface GroupUpdate {
  eventId: string;
  groupId: string;
  seq: number;
  kind: GroupEventKind;
  epoch: number;
  senderUserId: string | null;
  senderDeviceId: number | null;
  serverTimestamp: string | null;
  /** MESSAGE_DELETED: the message deleted for everyone. */
  refersTo: string | null;
  /** APPLICATION: the decrypted message. */
  plaintext?: Uint8Array;
  /** COMMIT: this device was removed by it; its group state is gone. */
  removed?: boolean;
  /** WELCOME: this device joined. */
  joined?: boolean;
}

const MAX_COMMIT_ATTEMPTS = 8;
const SYNC_PAGE = 200;

/** A change to commit: proposals and the roster names the server checks them against. */
export interface GroupChange {
  proposals: Proposal[];
  addUserIds?: string[];
  removeUserIds?: string[];
}

export interface MlsGroupManagerOptions {
  /** Acknowledge what sync() processed (default). The SDK leaves acknowledging to its inbox pipeline instead. */
  ackOnSync?: boolean;
  /** Called for every newly processed event, before it is marked processed: the place to persist what it meant. */
  onProcessed?: (update: GroupUpdate) => Promise<void>;
}

export class MlsGroupManager {
  readonly keyPackages: MlsKeyPackages;
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly me: string;

  constructor(
    private readonly kv: KeyValueStore,
    private readonly http: HttpTransport,
    readonly identity: MlsIdentity,
    private readonly options: MlsGroupManagerOptions = {},
  ) {
    this.keyPackages = new MlsKeyPackages(kv, http, identity);
    this.me = `${identity.userId}.${identity.deviceId}`;
  }

  /** Runs one state-changing step of a group at a time. */
  private withGroup<T>(groupId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(groupId) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    this.locks.set(groupId, run.catch(() => undefined));
    return run;
  }

  /** Group ids this device holds MLS state for. */
  async groupIds(): Promise<string[]> {
    return (await this.kv.list("mls:group:")).map((k) => k.slice("mls:group:".length));
  }

  /** Drops this device's state of a group it is no longer in. */
  async forget(groupId: string): Promise<void> {
    await this.withGroup(groupId, () => this.kv.delete(`mls:group:${groupId}`));
  }

  async state(groupId: string): Promise<ClientState | null> {
    const raw = await this.kv.get(`mls:group:${groupId}`);
    if (!raw) return null;
    const decoded = decodeGroupState(raw, 0);
    if (!decoded) throw new Error(`stored state of group ${groupId} is unreadable`);
    return { ...decoded[0], clientConfig: defaultClientConfig };
  }

  private async save(groupId: string, state: ClientState): Promise<void> {
    await this.kv.set(`mls:group:${groupId}`, new Uint8Array(encodeGroupState(state)));
  }

  private async lastSeq(groupId: string): Promise<number> {
    const raw = await this.kv.get(`mls:seq:${groupId}`);
    return raw ? Number(Buffer.from(raw).toString()) : 0;
  }

  private async setLastSeq(groupId: string, seq: number): Promise<void> {
    await this.kv.set(`mls:seq:${groupId}`, new Uint8Array(Buffer.from(String(seq))));
  }

  private async requireState(groupId: string): Promise<ClientState> {
    const s = await this.state(groupId);
    if (!s) throw new Error(`this device is not in group ${groupId}`);
    return s;
  }

  /** Devices ("<userId>.<deviceId>") in this device's view of the tree, by leaf index. */
  async members(groupId: string): Promise<Map<number, string>> {
    const s = await this.requireState(groupId);
    const out = new Map<number, string>();
    s.ratchetTree.forEach((n, i) => {
      if (i % 2 === 0 && n?.nodeType === "leaf") out.set(i / 2, identityOf(n.leaf.credential) ?? "?");
    });
    return out;
  }

  /** Creates the group on the server and in MLS, then adds the given users in the first commit. */
  async createGroup(opts: { name?: string; description?: string; memberUserIds?: string[] } = {}): Promise<string> {
    const cs = await mlsSuite();
    const own = await this.keyPackages.generate();
    const mlsGroupId = crypto.getRandomValues(new Uint8Array(16));
    const state = await createGroup(mlsGroupId, own.publicPackage, own.privatePackage, [], cs);
    const groupInfo = await createGroupInfoWithExternalPubAndRatchetTree(state, [], cs);
    const { createGroup: g } = await this.http.request(CreateGroupDocument, {
      input: {
        mlsGroupId: b64(mlsGroupId),
        name: opts.name ?? null,
        description: opts.description ?? null,
        groupInfo: b64(encodeMlsMessage({ groupInfo, wireformat: "mls_group_info", version: "mls10" })),
      },
    });
    await this.save(g.id, state);
    if (opts.memberUserIds?.length) await this.add(g.id, opts.memberUserIds);
    return g.id;
  }

  /** Adds users (all their active devices) with key packages claimed from the server. */
  async add(groupId: string, userIds: string[]): Promise<number> {
    const { claimKeyPackages } = await this.http.request(ClaimKeyPackagesDocument, { userIds });
    const proposals: Proposal[] = claimKeyPackages.map((c) => {
      const m = decodeMlsMessage(unb64(c.keyPackage), 0)?.[0];
      if (!m || m.wireformat !== "mls_key_package") throw new Error("the server handed out something that is not a key package");
      return { proposalType: "add", add: { keyPackage: m.keyPackage } };
    });
    // The same claimed key packages are used again if the commit has to be rebuilt on a newer epoch.
    return this.commit(groupId, async () => ({ proposals, addUserIds: userIds }));
  }

  /** Removes users: every leaf whose credential names one of their devices. */
  async remove(groupId: string, userIds: string[]): Promise<number> {
    return this.commit(groupId, async () => {
      const leaves = await this.members(groupId);
      const proposals: Proposal[] = [...leaves]
        .filter(([, id]) => userIds.includes(id.split(".")[0]))
        .map(([leaf]) => ({ proposalType: "remove", remove: { removed: leaf } }));
      return { proposals, removeUserIds: userIds };
    });
  }

  /** An empty commit: rotates this device's path secrets, and removes the leaves of users who left. */
  async update(groupId: string, removeLeftUserIds: string[] = []): Promise<number> {
    return removeLeftUserIds.length ? this.remove(groupId, removeLeftUserIds) : this.commit(groupId, async () => ({ proposals: [] }));
  }

  /**
   * Builds a commit on the current state and remembers it as pending: the new state is adopted only when the server
   * accepts it (the reply, or — after a crash or a lost reply — the commit coming back as an event).
   */
  async prepareCommit(
    groupId: string,
    change: { proposals: Proposal[]; addUserIds?: string[]; removeUserIds?: string[] },
  ): Promise<CommitGroupInput> {
    const cs = await mlsSuite();
    const state = await this.requireState(groupId);
    const result = await createCommit(
      { state, cipherSuite: cs },
      { extraProposals: change.proposals, ratchetTreeExtension: true, wireAsPublicMessage: true },
    );
    const groupInfo = await createGroupInfoWithExternalPubAndRatchetTree(result.newState, [], cs);
    const commit = b64(encodeMlsMessage(result.commit));
    await this.kv.set(`mls:pending:${groupId}`, new Uint8Array(encodeGroupState(result.newState)));
    await this.kv.set(`mls:pendingCommit:${groupId}`, new Uint8Array(Buffer.from(commit)));
    return {
      groupId,
      commit,
      welcome: result.welcome ? b64(encodeMlsMessage({ welcome: result.welcome, wireformat: "mls_welcome", version: "mls10" })) : null,
      groupInfo: b64(encodeMlsMessage({ groupInfo, wireformat: "mls_group_info", version: "mls10" })),
      addUserIds: change.addUserIds ?? null,
      removeUserIds: change.removeUserIds ?? null,
    };
  }

  /** Adopts the pending state if `commit` is the pending commit; forgets the pending one either way. */
  private async settlePending(groupId: string, commit: string | null): Promise<boolean> {
    const pendingCommit = await this.kv.get(`mls:pendingCommit:${groupId}`);
    const raw = await this.kv.get(`mls:pending:${groupId}`);
    const adopt = !!pendingCommit && !!raw && commit !== null && Buffer.from(pendingCommit).toString() === commit;
    if (adopt) await this.kv.set(`mls:group:${groupId}`, raw!);
    await this.kv.delete(`mls:pending:${groupId}`);
    await this.kv.delete(`mls:pendingCommit:${groupId}`);
    return adopt;
  }

  /**
   * Sends a commit built on the current state. STALE_EPOCH: another commit won; process what was missed (which
   * includes it) and build again on the new epoch.
   */
  commit(groupId: string, build: () => Promise<GroupChange | null>): Promise<number> {
    return this.withGroup(groupId, async () => {
      for (let attempt = 1; ; attempt++) {
        const change = await build();
        // Nothing (left) to do, e.g. a concurrent commit already made this change.
        if (!change) return Number((await this.requireState(groupId)).groupContext.epoch);
        const input = await this.prepareCommit(groupId, change);
        try {
          const { commitGroup } = await this.http.request(CommitGroupDocument, { input });
          await this.settlePending(groupId, input.commit);
          return commitGroup.epoch;
        } catch (err) {
          if (!(err instanceof GraphQLRequestError) || err.code !== "STALE_EPOCH" || attempt >= MAX_COMMIT_ATTEMPTS) throw err;
          await this.syncLocked(groupId);
        }
      }
    });
  }

  /** Encrypts and sends an application message; returns the server's message id. */
  async send(groupId: string, plaintext: Uint8Array): Promise<string> {
    return (await this.post(groupId, plaintext)).messageId;
  }

  /** send(), with the server's timestamp. */
  async post(groupId: string, plaintext: Uint8Array): Promise<{ messageId: string; serverTimestamp: string }> {
    return this.withGroup(groupId, async () => {
      const cs = await mlsSuite();
      for (let attempt = 1; ; attempt++) {
        const state = await this.requireState(groupId);
        const { newState, privateMessage } = await createApplicationMessage(state, plaintext, cs);
        await this.save(groupId, newState);
        try {
          const { sendGroupMessage } = await this.http.request(SendGroupMessageDocument, {
            groupId,
            message: b64(encodeMlsMessage({ privateMessage, wireformat: "mls_private_message", version: "mls10" })),
          });
          return sendGroupMessage;
        } catch (err) {
          // This device missed commits: catch up, then encrypt again in the group's current epoch.
          if (!(err instanceof GraphQLRequestError) || err.code !== "STALE_EPOCH" || attempt >= MAX_COMMIT_ATTEMPTS) throw err;
          await this.syncLocked(groupId);
        }
      }
    });
  }

  async rename(groupId: string, name: string, description?: string): Promise<void> {
    await this.http.request(UpdateGroupDocument, { input: { groupId, name, ...(description !== undefined ? { description } : {}) } });
  }

  /** Leaves: the server stops delivery at once; some member's next commit removes this device's leaf. */
  async leave(groupId: string): Promise<void> {
    await this.withGroup(groupId, async () => {
      await this.http.request(LeaveGroupDocument, { groupId });
      await this.kv.delete(`mls:group:${groupId}`);
    });
  }

  /** Reads and processes this device's unacknowledged events of one group. */
  async sync(groupId: string): Promise<GroupUpdate[]> {
    return this.withGroup(groupId, () => this.syncLocked(groupId));
  }

  private async syncLocked(groupId: string): Promise<GroupUpdate[]> {
    const out: GroupUpdate[] = [];
    let afterSeq = 0;
    for (;;) {
      const { pendingGroupEvents } = await this.http.request(PendingGroupEventsDocument, { groupId, first: SYNC_PAGE, afterSeq });
      for (const e of pendingGroupEvents) {
        const u = await this.handleLocked(e);
        if (u) out.push(u);
        afterSeq = e.seq;
      }
      if (pendingGroupEvents.length && this.options.ackOnSync !== false) await this.ack(pendingGroupEvents.map((e) => e.id));
      if (pendingGroupEvents.length < SYNC_PAGE) return out;
    }
  }

  /** Processes one event (from the subscription or a sync); returns null for one already processed. */
  async handle(event: GroupEventData): Promise<GroupUpdate | null> {
    return this.withGroup(event.groupId, () => this.handleLocked(event));
  }

  async ack(ids: string[]): Promise<void> {
    await this.http.request(AckGroupEventsDocument, { ids });
  }

  private async handleLocked(e: GroupEventData): Promise<GroupUpdate | null> {
    if (e.seq <= (await this.lastSeq(e.groupId))) return null;
    const update: GroupUpdate = {
      eventId: e.id,
      groupId: e.groupId,
      seq: e.seq,
      kind: e.kind,
      epoch: e.epoch,
      senderUserId: e.senderUserId ?? null,
      senderDeviceId: e.senderDeviceId ?? null,
      serverTimestamp: e.serverTimestamp ?? null,
      refersTo: e.refersTo ?? null,
    };
    const fromMe = `${e.senderUserId}.${e.senderDeviceId}` === this.me;
    const cs = await mlsSuite();
    const bytes = e.message ? unb64(e.message) : null;
    if (e.kind === "WELCOME" && bytes) {
      const m = decodeMlsMessage(bytes, 0)?.[0];
      if (!m || m.wireformat !== "mls_welcome") throw new Error("WELCOME event without a welcome");
      for (const secret of m.welcome.secrets) {
        const mine = await this.keyPackages.find(secret.newMember);
        if (!mine) continue;
        const state = await joinGroup(m.welcome, mine.publicPackage, mine.privatePackage, emptyPskIndex, cs);
        await this.save(e.groupId, state);
        await this.keyPackages.consumed(secret.newMember);
        update.joined = true;
        break;
      }
    } else if (e.kind === "COMMIT" && bytes) {
      const state = await this.state(e.groupId);
      // Our own accepted commit: already applied when the server said yes, or still pending (crash, lost reply).
      const own = fromMe && state && Number(state.groupContext.epoch) < e.epoch ? await this.settlePending(e.groupId, e.message!) : false;
      if (!own && state && Number(state.groupContext.epoch) < e.epoch) {
        if (!fromMe) await this.settlePending(e.groupId, null);
        const m = decodeMlsMessage(bytes, 0)?.[0];
        if (!m || m.wireformat !== "mls_public_message") throw new Error("COMMIT event without a public message");
        if (removesMe(m.publicMessage.content, state)) {
          await this.kv.delete(`mls:group:${e.groupId}`);
          update.removed = true;
        } else {
          const r = await processMessage(m, state, emptyPskIndex, acceptAll, cs);
          await this.save(e.groupId, r.newState);
        }
      }
    } else if (e.kind === "APPLICATION" && bytes && !fromMe) {
      const state = await this.state(e.groupId);
      const m = decodeMlsMessage(bytes, 0)?.[0];
      if (state && m && m.wireformat === "mls_private_message") {
        const r = await processMessage(m, state, emptyPskIndex, acceptAll, cs);
        await this.save(e.groupId, r.newState);
        if (r.kind === "applicationMessage") update.plaintext = r.message;
      }
    }
    await this.options.onProcessed?.(update);
    await this.setLastSeq(e.groupId, e.seq);
    return update;
  }
}

function removesMe(content: { contentType: string; commit?: { proposals: { proposalOrRefType: string; proposal?: Proposal }[] } }, state: ClientState): boolean {
  if (content.contentType !== "commit" || !content.commit) return false;
  const myLeaf = state.privatePath.leafIndex;
  return content.commit.proposals.some(
    (p) => p.proposalOrRefType === "proposal" && p.proposal?.proposalType === "remove" && p.proposal.remove.removed === myLeaf,
  );
}
