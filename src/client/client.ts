// VignetteClient: an end-to-end encrypted messenger for apps. It owns one device's account directory (Signal state,
// credentials, local messages), keeps its published keys healthy, sends through the Sender, and turns the inbox
// subscription into app events, acknowledging each item only after the app's handlers for it returned.
import type { Client as WsClient } from "graphql-ws";
import { ProtocolAddress, PublicKey } from "@signalapp/libsignal-client";
import { AccountDirectory, type AccountInfo } from "./account-store.ts";
import path from "node:path";
import { Attachments } from "./attachments/attachments.ts";
import { checkOutgoing, decodeContent, isAction, type ActionBody, type RsvpAnswer, type Sendable, type SendableBody } from "./content.ts";
import { sendAction } from "./conversation.ts";
import { AckQueue } from "./acks.ts";
import { ExpiryTimers } from "./expiry.ts";
import { Groups, KEY_PACKAGE_TARGET } from "./groups.ts";
import { Calls, type CallsOptions } from "./calls/calls.ts";
import { AsyncEmitter, Mutex } from "./emitter.ts";
import type { ClientEvents, ReceivedMessage } from "./events.ts";
import {
  AckEnvelopesDocument,
  CreateDeviceLinkDocument,
  DeactivateDeviceDocument,
  DeleteMessageDocument,
  DevicesDocument,
  InboxDocument,
  LinkDeviceDocument,
  MarkReadDocument,
  PresenceUpdatesDocument,
  ConversationsDocument,
  RegisterAccountDocument,
  ResetDeviceKeysDocument,
  SetTypingDocument,
  TurnServersDocument,
  TypingDocument,
  UserByIdDocument,
  UserByUsernameDocument,
  type ConversationsQuery,
  type InboxSubscription,
} from "./generated/graphql.ts";
import { Sender, type Address, type SendResult } from "./messaging.ts";
import { MessageStore, type MessageRecord, type StoredMessage } from "./message-store.ts";
import { receiveEnvelope, type ReceiveDeps } from "./receive.ts";
import { DEFAULT_ROTATION_INTERVAL_MS, ONE_TIME_KEY_TARGET, PreKeyMaintainer } from "./prekeys.ts";
import { PushClient } from "./push.ts";
import { Consent } from "./consent.ts";
import { SignalDevice } from "./signal/device.ts";
import { snippetOf } from "./store/fold.ts";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { VignetteError, wrap } from "./errors.ts";
import { HttpTransport, isUnknownPersisted, openWs, operationPayload, type GraphQLErrorShape } from "./transport.ts";

export { VignetteError };
export type { ClientEvents, ReceivedMessage };

export const DEFAULT_SERVER = "http://localhost:8091/graphql";

export interface ClientOptions {
  /** How often the signed pre-key and the last-resort Kyber key are replaced (default 7 days). */
  preKeyRotationIntervalMs?: number;
  /** Bound on automatic re-sends after a device-set error (default 4 attempts in all). */
  maxSendAttempts?: number;
  /** Call signaling: the ring timeout (default 60 s). */
  calls?: CallsOptions;
}

type InboxEvent = InboxSubscription["inbox"];
type LiveEnvelopeEvent = Extract<InboxEvent, { __typename: "LiveEnvelopeEvent" }>;

export type { Sendable };

/** What react, edit, vote and rsvp answer, for 1:1 and group messages alike. */
export type SentAction = Pick<SendResult, "messageId" | "serverTimestamp" | "sentAt">;

/** Bounds of history reads: a page, and a search query. */
export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 1000;
export const MAX_SEARCH_LENGTH = 1000;

const PRIMARY_DEVICE = 1;
const notPrimary = (what: string) =>
  new VignetteError(`only the primary device (device ${PRIMARY_DEVICE}) may ${what}; this is a linked device`, "FORBIDDEN");
const isGroupMessageId = (id: string) => id.startsWith("g:");
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class VignetteClient extends AsyncEmitter<ClientEvents> {
  readonly http: HttpTransport;
  readonly store: MessageStore;
  readonly keys: PreKeyMaintainer;
  /** Wake-ups while the app is away: `push.register(subscription)`, `push.unregister()`, `push.config()`. */
  readonly push: PushClient;
  /** Encrypted attachments: upload(bytes | path, { contentType, fileName, onProgress }), download(pointer, { to }). */
  readonly attachments: Attachments;
  /** MLS groups: create, add, remove, leave, send, list, members, roles. */
  readonly groups: Groups;
  /** 1:1 call signaling (the app brings WebRTC): offer, answer, decline, ice, hangup, turnServers. */
  readonly calls: Calls;
  /** Message requests, blocking, reports, presence privacy (also as client.block(), acceptRequest(), ...). */
  readonly consent: Consent;
  private sender: Sender;
  private crypto = new Mutex();
  private inbox = new Mutex();
  private acks = new AckQueue((ids) => this.http.request(AckEnvelopesDocument, { ids }), (e) => this.fail(e));
  private ws: WsClient | null = null;
  private stops: (() => void)[] = [];
  private expiry: ExpiryTimers;
  private usernames = new Map<string, string | null>();
  private closed = false;
  private receiving: ReceiveDeps;

  private constructor(
    readonly account: AccountInfo,
    readonly directory: AccountDirectory,
    private device: SignalDevice,
    private options: ClientOptions,
  ) {
    super();
    this.http = new HttpTransport(account.server, account.token);
    this.store = new MessageStore(directory.kv);
    this.push = new PushClient(this.http);
    this.consent = new Consent({ http: this.http, kv: directory.kv, resolveUser: (w) => this.resolveUser(w), emit: (e, v) => this.emit(e, v), fail: (e) => this.fail(e) });
    this.on("message", (m) => this.consent.seen(m));
    this.attachments = new Attachments(this.http, path.join(directory.dir, "tmp"));
    this.expiry = new ExpiryTimers(this.store, (e) => this.notify("expired", e, (err) => this.fail(err)));
    this.receiving = {
      self: this.self,
      store: this.store,
      staged: directory.signalKv,
      crypto: this.crypto,
      signal: () => this.device,
      emit: (name, value) => this.emit(name, value),
      ack: (id) => this.ack(id),
      scheduleExpiry: (m) => this.expiry.schedule(m),
      isBlocked: (userId) => this.consent.isBlocked(userId),
    };
    this.sender = new Sender(this.self, this.http, () => this.device, this.crypto, options.maxSendAttempts);
    this.keys = new PreKeyMaintainer(() => this.device, this.http, directory.kv, this.crypto, options.preKeyRotationIntervalMs ?? DEFAULT_ROTATION_INTERVAL_MS, (e) =>
      this.fail(e),
    );
    this.groups = new Groups({
      self: this.self,
      kv: directory.kv,
      http: this.http,
      store: this.store,
      resolveUser: (who) => this.resolveUser(who),
      emit: (event, value) => this.emit(event, value as ClientEvents[typeof event]),
      stored: (m) => this.expiry.schedule(m),
      unstored: (id) => this.expiry.clear(id),
      fail: (e) => this.fail(e),
      ack: (id) => this.ack(id),
    });
    this.calls = new Calls(
      {
        self: this.self,
        resolveUser: (who) => this.resolveUser(who),
        sendSignal: async (to, signal) => void (await wrap(() => this.sender.send(to, { kind: "call", signal }, { online: true }))),
        sendMissedCall: async (to, callId, video) => void (await this.send(to, { kind: "missedCall", callId, video })),
        emit: ({ type, ...event }) => this.emit(type, event as never),
        fail: (e) => this.fail(e),
        turnServers: () => wrap(async () => (await this.http.request(TurnServersDocument)).turnServers),
      },
      options.calls,
    );
  }

  /** This device's Signal state (replaced by resetIdentity). */
  get signal(): SignalDevice {
    return this.device;
  }
  get userId() {
    return this.account.userId;
  }
  get deviceId() {
    return this.account.deviceId;
  }
  get username() {
    return this.account.username;
  }
  get self(): Address {
    return { userId: this.account.userId, deviceId: this.account.deviceId };
  }

  // ---- account lifecycle -------------------------------------------------------------------------------------

  /** Creates a new account in a new directory: fresh identity, 100 one-time EC and 100 Kyber pre-keys. */
  static async register(args: { dir: string; username?: string | null; deviceName?: string; server?: string } & ClientOptions) {
    const server = args.server ?? DEFAULT_SERVER;
    return VignetteClient.create(args.dir, server, args, async (keys) => {
      const { registerAccount } = await new HttpTransport(server).request(RegisterAccountDocument, {
        input: { username: args.username ?? null, deviceName: args.deviceName ?? null, keys },
      });
      return { ...registerAccount, username: args.username?.trim().toLowerCase() ?? null };
    });
  }

  /** Adds this directory as a new device of an existing account, with a link token made on one of its devices. */
  static async link(args: { dir: string; linkToken: string; deviceName?: string; server?: string } & ClientOptions) {
    const server = args.server ?? DEFAULT_SERVER;
    return VignetteClient.create(args.dir, server, args, async (keys) => {
      const { linkDevice } = await new HttpTransport(server).request(LinkDeviceDocument, {
        input: { linkToken: args.linkToken, deviceName: args.deviceName ?? null, keys },
      });
      const { user } = await new HttpTransport(server, linkDevice.token).request(UserByIdDocument, { id: linkDevice.userId });
      return { ...linkDevice, username: user?.username ?? null };
    });
  }

  private static async create(
    dir: string,
    server: string,
    options: ClientOptions,
    enroll: (keys: Awaited<ReturnType<SignalDevice["registrationKeys"]>>) => Promise<Omit<AccountInfo, "server">>,
  ): Promise<VignetteClient> {
    const directory = await AccountDirectory.open(dir);
    if (await directory.readInfo()) {
      await directory.close();
      throw new VignetteError(`an account already exists in ${dir}`, "ACCOUNT_EXISTS");
    }
    let client: VignetteClient | null = null;
    const signal = await SignalDevice.open(directory.signalKv, (a, k) => client?.identityChanged(a, k));
    // 200 pre-keys and their bookkeeping in one transaction rather than one commit each.
    directory.signalKv.begin();
    const keys = await signal.registrationKeys(ONE_TIME_KEY_TARGET).catch((err) => (directory.signalKv.rollback(), Promise.reject(err)));
    await directory.signalKv.commit();
    const creds = await wrap(() => enroll(keys)).catch((err) => (directory.close(), Promise.reject(err)));
    const info: AccountInfo = { server, ...creds };
    await directory.writeInfo(info);
    client = new VignetteClient(info, directory, signal, options);
    await client.keys.markRotated();
    // Without key packages on the server nobody could add this device to a group.
    await wrap(() => client.groups.mls.keyPackages.upload(KEY_PACKAGE_TARGET, true));
    return client;
  }

  /** Opens the account kept in dir. */
  static async open(dir: string, options: ClientOptions = {}): Promise<VignetteClient> {
    const directory = await AccountDirectory.open(dir);
    const info = await directory.readInfo();
    if (!info) {
      await directory.close();
      throw new VignetteError(`no account in ${dir}: register or link first`, "NO_ACCOUNT");
    }
    let client: VignetteClient | null = null;
    const signal = await SignalDevice.open(directory.signalKv, (a, k) => client?.identityChanged(a, k));
    client = new VignetteClient(info, directory, signal, options);
    return client;
  }

  /** A one-time token for `link` on a new device. Only the primary device (device 1) may link others. */
  async createLinkToken(): Promise<{ token: string; expiresAt: string }> {
    // The server refuses too; saying so here names the device to use instead of a bare FORBIDDEN.
    if (this.deviceId !== PRIMARY_DEVICE) throw notPrimary("link new devices");
    return wrap(async () => (await this.http.request(CreateDeviceLinkDocument)).createDeviceLink);
  }

  async devices(userId = this.userId) {
    return wrap(async () => (await this.http.request(DevicesDocument, { userId })).devices);
  }

  /** Any device may deactivate itself; only the primary device (device 1) deactivates others. */
  async deactivateDevice(deviceId: number): Promise<boolean> {
    if (deviceId !== this.deviceId && this.deviceId !== PRIMARY_DEVICE) throw notPrimary("deactivate other devices");
    const done = await wrap(async () => (await this.http.request(DeactivateDeviceDocument, { deviceId })).deactivateDevice);
    this.sender.forgetDevices(this.userId);
    if (deviceId === this.deviceId) await this.close();
    return done;
  }

  /**
   * Re-registers this device after its Signal state was lost or compromised: a new identity and new pre-keys
   * replace the old ones on the server, and every local session is dropped. Contacts see a safety-number change.
   */
  async resetIdentity(): Promise<void> {
    await this.crypto.run(async () => {
      const kv = [];
      for (const prefix of ["self/", "session/", "prekey/", "signed/", "kyber/"]) {
        for (const key of await this.directory.kv.list(prefix)) kv.push({ key, value: null });
      }
      await this.directory.kv.apply({ kv });
      this.device = await SignalDevice.open(this.directory.signalKv, (a, k) => this.identityChanged(a, k));
      this.directory.signalKv.begin();
      const keys = await this.device.registrationKeys(ONE_TIME_KEY_TARGET).catch((err) => (this.directory.signalKv.rollback(), Promise.reject(err)));
      await this.directory.signalKv.commit();
      await wrap(() => this.http.request(ResetDeviceKeysDocument, { keys }));
      await this.keys.markRotated();
    });
  }

  // ---- users and safety numbers ------------------------------------------------------------------------------

  block = (who: string) => this.consent.block(who);
  unblock = (who: string) => this.consent.unblock(who);
  acceptRequest = (who: string) => this.consent.accept(who);
  report = (messageId: string, reason?: string, excerpt?: string) => this.consent.report(messageId, reason, excerpt);
  requests = () => this.consent.requests();

  /** A username or a user id to a user id. */
  async resolveUser(who: string): Promise<string> {
    if (UUID.test(who)) return who.toLowerCase();
    const { userByUsername } = await wrap(() => this.http.request(UserByUsernameDocument, { username: who }));
    if (!userByUsername) throw new VignetteError(`no user named ${who}`, "NOT_FOUND");
    this.usernames.set(userByUsername.id, userByUsername.username ?? null);
    return userByUsername.id;
  }

  async usernameOf(userId: string): Promise<string | null> {
    if (!this.usernames.has(userId)) {
      const { user } = await wrap(() => this.http.request(UserByIdDocument, { id: userId }));
      this.usernames.set(userId, user?.username ?? null);
    }
    return this.usernames.get(userId) ?? null;
  }

  /** Safety numbers with each device of a user this device has a session (or has had one) with. */
  async safetyNumbers(who: string): Promise<{ deviceId: number; safetyNumber: string }[]> {
    const userId = await this.resolveUser(who);
    const out = [];
    for (const d of await this.devices(userId)) {
      const key = await this.signal.remoteIdentity(userId, d.deviceId);
      if (key) out.push({ deviceId: d.deviceId, safetyNumber: this.signal.safetyNumber(this.userId, userId, key) });
    }
    return out;
  }

  private identityChanged(address: ProtocolAddress, key: PublicKey) {
    const userId = address.name();
    this.notify(
      "safetyNumberChanged",
      { userId, deviceId: address.deviceId(), safetyNumber: this.signal.safetyNumber(this.userId, userId, key) },
      (e) => this.fail(e),
    );
  }

  // ---- sending -----------------------------------------------------------------------------------------------

  /**
   * Encrypts and sends to every device of the recipient (and sync copies to this account's other devices). replyTo
   * quotes a message of this conversation (its id and the start of its text travel with the reply).
   */
  async send(to: string, message: Sendable, opts: { expiresInSeconds?: number; replyTo?: string } = {}): Promise<SendResult> {
    const body = outgoing(typeof message === "string" ? { kind: "text", text: message } : message);
    if (isAction(body)) throw new VignetteError(`send a ${body.kind} with react(), edit(), vote() or rsvp()`, "BAD_USER_INPUT");
    const peerUserId = await this.resolveUser(to);
    if (opts.expiresInSeconds === undefined) opts = { ...opts, expiresInSeconds: (await this.defaultTimer(peerUserId)) ?? undefined };
    let replyTo = null;
    if (opts.replyTo) {
      const quoted = await this.store.get(opts.replyTo);
      if (!quoted || quoted.peerUserId !== peerUserId || quoted.groupId)
        throw new VignetteError(`no message ${opts.replyTo} in the conversation with ${to} to reply to`, "NOT_FOUND");
      replyTo = { messageId: quoted.messageId, snippet: snippetOf(quoted.body) };
    }
    const r = await wrap(() => this.sender.send(peerUserId, body, { expiresInSeconds: opts.expiresInSeconds, ...(replyTo ? { replyTo } : {}) }));
    const expiresAt = opts.expiresInSeconds ? new Date(Date.parse(r.serverTimestamp) + opts.expiresInSeconds * 1000).toISOString() : null;
    const stored: MessageRecord = {
      messageId: r.messageId,
      conversationId: (await this.store.conversationWith(peerUserId)) ?? null,
      peerUserId,
      direction: "out",
      from: this.self,
      sentAt: r.sentAt,
      serverTimestamp: r.serverTimestamp,
      body,
      expiresAt,
      replyTo,
    };
    await this.store.put(stored);
    this.expiry.schedule(stored);
    return r;
  }

  /**
   * A default self-destruct timer applied to every message sent to `who` (0 or null: none). For a group id it is the
   * group's shared setting (every member's SDK applies it); for a user it is this device's setting for that chat.
   */
  async setDefaultTimer(who: string, seconds: number | null): Promise<void> {
    if (UUID.test(who) && (await this.groups.get(who).catch(() => null))) {
      await this.groups.setTimer(who.toLowerCase(), seconds);
      return;
    }
    const peer = await this.resolveUser(who);
    if (seconds) await this.directory.kv.set(`timer/${peer}`, new Uint8Array(Buffer.from(String(seconds))));
    else await this.directory.kv.delete(`timer/${peer}`);
  }

  private async defaultTimer(peerUserId: string): Promise<number | null> {
    const raw = await this.directory.kv.get(`timer/${peerUserId}`);
    return raw ? Number(Buffer.from(raw).toString()) : null;
  }

  async noteToSelf(text: string): Promise<SendResult> {
    return this.send(this.userId, { kind: "noteToSelf", text });
  }

  // ---- reactions, edits, votes, RSVPs: sent in the conversation of the message they change ---------------------

  /** Reacts to a message with one emoji (replacing this account's earlier one); null takes the reaction back. */
  react(messageId: string, emoji: string | null): Promise<SentAction> {
    return this.sendAction({ kind: "reaction", messageId, emoji });
  }

  /** Replaces the text of a message this account sent, within 24 hours; everyone keeps the edit history. */
  edit(messageId: string, text: string): Promise<SentAction> {
    return this.sendAction({ kind: "edit", messageId, text });
  }

  /** Votes in a poll (option indices; one unless the poll allows several); [] takes the vote back. */
  vote(pollId: string, choices: number | number[]): Promise<SentAction> {
    const list = Array.isArray(choices) ? choices : [choices];
    return this.sendAction({ kind: "vote", pollId, choices: [...new Set(list)].sort((a, b) => a - b) });
  }

  /** Answers an event's invitation. */
  rsvp(eventId: string, answer: RsvpAnswer): Promise<SentAction> {
    return this.sendAction({ kind: "rsvp", eventId, answer });
  }

  private async sendAction(body: ActionBody): Promise<SentAction> {
    outgoing(body);
    return sendAction(this.store, this.self, body, (target) =>
      // Group conversations send through the group (MLS), not through Signal 1:1 envelopes.
      target.groupId ? this.groups.postAction(target.groupId, body) : wrap(() => this.sender.send(target.peerUserId, body)),
    );
  }

  /** Read receipts for messages (1:1 and group ones alike) to their senders. */
  async markRead(messageIds: string[]): Promise<number> {
    const group = messageIds.filter(isGroupMessageId);
    const direct = messageIds.filter((id) => !isGroupMessageId(id));
    let n = group.length ? await this.groups.markRead(group) : 0;
    if (direct.length) n += await wrap(async () => (await this.http.request(MarkReadDocument, { messageIds: direct })).markRead);
    return n;
  }

  /** Deletes a message here at once, and for everyone (the other side and your other devices) if asked. */
  async deleteMessage(messageId: string, forEveryone: boolean): Promise<boolean> {
    if (isGroupMessageId(messageId)) return this.groups.deleteMessage(messageId, forEveryone);
    const ok = await wrap(async () => (await this.http.request(DeleteMessageDocument, { messageId, forEveryone })).deleteMessage);
    await this.store.remove(messageId);
    this.expiry.clear(messageId);
    return ok;
  }

  /** Tells the other side of the conversation with `who` that you are typing (or stopped). */
  async setTyping(who: string, isTyping: boolean): Promise<boolean> {
    const conversationId = await this.conversationId(who);
    return wrap(async () => (await this.http.request(SetTypingDocument, { conversationId, isTyping })).setTyping);
  }

  async conversationId(who: string): Promise<string> {
    const peer = await this.resolveUser(who);
    const known = await this.store.conversationWith(peer);
    if (known) return known;
    // Not learnt from an envelope yet (e.g. only sent so far): ask the server's conversation list.
    let after: string | null = null;
    for (;;) {
      const { conversations }: ConversationsQuery = await wrap(() =>
        this.http.request(ConversationsDocument, { first: 100, after }),
      );
      const hit = conversations.edges.find((e) => e.node.peerUserId === peer);
      if (hit) {
        await this.store.learnConversation(peer, hit.node.id);
        return hit.node.id;
      }
      if (!conversations.pageInfo.hasNextPage) break;
      after = conversations.pageInfo.endCursor ?? null;
    }
    throw new VignetteError(`no conversation with ${who} yet`, "NOT_FOUND");
  }

  /** A username, user id or group id to the key its conversation is stored under. */
  private async conversationKeyOf(who: string): Promise<string> {
    return UUID.test(who) ? who.toLowerCase() : this.resolveUser(who);
  }

  /**
   * Local history, newest first, with reactions, edits and tallies folded in: of one conversation (a username, user id
   * or group id) or of all. before: a message id (the oldest of the previous page) or a time; limit 50 by default.
   */
  async messages(who?: string, opts: { before?: string | Date | number; limit?: number } = {}): Promise<StoredMessage[]> {
    const conversation = who === undefined ? undefined : await this.conversationKeyOf(who);
    const b = opts.before;
    const before = b === undefined ? undefined : typeof b === "string" ? { messageId: b } : { at: typeof b === "number" ? b : b.getTime() };
    return this.store.page({ conversation, before, limit: pageLimit(opts.limit) });
  }

  /** Full-text search of the local history (on this device only), newest first; `in` keeps it to one conversation. */
  async search(text: string, opts: { in?: string; limit?: number } = {}): Promise<StoredMessage[]> {
    if (text.length > MAX_SEARCH_LENGTH) throw new VignetteError(`a search is at most ${MAX_SEARCH_LENGTH} characters`, "BAD_USER_INPUT");
    const conversation = opts.in === undefined ? undefined : await this.conversationKeyOf(opts.in);
    return this.store.search({ text, conversation, limit: pageLimit(opts.limit) });
  }

  // ---- receiving ---------------------------------------------------------------------------------------------

  /** Connects: checks keys, then subscribes to the inbox (queued items first, then live) until close(). */
  async start(): Promise<void> {
    if (this.ws) return;
    this.ws = openWs(this.account.server, this.account.token, {
      retryAttempts: Number.MAX_SAFE_INTEGER,
      // 4401/4403: the token is no longer valid (this device was deactivated); reconnecting cannot help.
      shouldRetry: (code) => code !== 4401 && code !== 4403,
      onClosed: (code) => {
        if (code === 4401 || code === 4403) this.fail(new VignetteError("this device was deactivated", "DEVICE_DEACTIVATED"));
      },
    });
    this.keys.start();
    await this.sweepExpired();
    const ready = this.subscribe(InboxDocument, {}, (data) => this.inbox.run(() => this.handleInbox(data.inbox)));
    this.stops.push(ready);
    await this.keys.topUp().then(
      (n) => (n.oneTimePreKeys || n.oneTimeKyberPreKeys) && this.notify("preKeysToppedUp", n, (e) => this.fail(e)),
      (e) => this.fail(e),
    );
    await this.groups.mls.keyPackages.replenish(KEY_PACKAGE_TARGET).catch((e) => this.fail(e));
    // Devices linked or deactivated while this one was away.
    void this.groups.reconcileOwnDevices().catch((e) => this.fail(e));
  }

  /** Live typing in the conversation with `who` (needs start()); returns a function that stops it. */
  async watchTyping(who: string): Promise<() => void> {
    const conversationId = await this.conversationId(who);
    return this.subscribe(TypingDocument, { conversationId }, ({ typing }) =>
      this.emit("typing", {
        conversationId: typing.conversationId,
        userId: typing.userId,
        deviceId: typing.deviceId ?? null,
        isTyping: typing.isTyping,
      }),
    );
  }

  /** Live presence of some users (needs start()); returns a function that stops it. */
  async watchPresence(who: string[]): Promise<() => void> {
    const userIds = await Promise.all(who.map((w) => this.resolveUser(w)));
    return this.subscribe(PresenceUpdatesDocument, { userIds }, ({ presence }) =>
      this.emit("presence", { userId: presence.userId, online: presence.online, lastSeenAt: presence.lastSeen ?? null }),
    );
  }

  private subscribe<T, V extends Record<string, unknown>>(
    doc: TypedDocumentNode<T, V>,
    variables: V,
    onData: (data: T) => Promise<void> | void,
  ): () => void {
    if (!this.ws) throw new VignetteError("not started: call start() first", "NOT_STARTED");
    // By hash, as over HTTP; a server that does not know the hash refuses before subscribing, so the text follows.
    const byHash = !this.http.sentAsText.has(doc);
    let stop = this.ws.subscribe<T>(
      operationPayload(doc, variables, byHash),
      {
        next: (r) => {
          if (r.errors?.length) return this.fail(new VignetteError(r.errors.map((e) => e.message).join("; ")));
          if (r.data) Promise.resolve(onData(r.data as T)).catch((e) => this.fail(e));
        },
        error: (err) => {
          if (this.closed) return;
          if (byHash && Array.isArray(err) && isUnknownPersisted(err as GraphQLErrorShape[])) {
            this.http.sentAsText.add(doc);
            stop = this.subscribe(doc, variables, onData);
            return;
          }
          const msg = Array.isArray(err) ? (err as GraphQLErrorShape[]).map((e) => e.message).join("; ") : String((err as Error)?.message ?? err);
          this.fail(new VignetteError(`subscription ended: ${msg}`));
        },
        complete: () => {},
      },
    );
    return () => stop();
  }

  private async handleInbox(ev: InboxEvent): Promise<void> {
    if (this.closed) return;
    switch (ev.__typename) {
      case "EnvelopeEvent":
        return receiveEnvelope(this.receiving, ev);
      case "LiveEnvelopeEvent":
        return this.handleLive(ev);
      case "ReceiptEvent": {
        // One event may stand for several messages (receipts of one batch are coalesced): the app gets one each.
        const field = ev.kind === "READ" ? "readAt" : "deliveredAt";
        for (const messageId of ev.messageIds) {
          await this.store.receipt(messageId, { [field]: ev.at });
          await this.emit("receipt", { messageId, conversationId: ev.conversationId, userId: ev.userId, kind: ev.kind, at: ev.at });
        }
        return this.ack(ev.id);
      }
      case "MessageDeletedEvent":
        await this.store.remove(ev.messageId);
        this.expiry.clear(ev.messageId);
        await this.emit("deleted", { messageId: ev.messageId, conversationId: ev.conversationId, byUserId: ev.deletedByUserId });
        return this.ack(ev.id);
      case "DeviceListChangedEvent":
        this.sender.forgetDevices(ev.userId);
        await this.emit("deviceListChanged", { userId: ev.userId });
        // Group upkeep (adding own new devices, removing deactivated ones) must not hold up the inbox.
        void this.groups.deviceListChanged(ev.userId).catch((e) => this.fail(e));
        return this.ack(ev.id);
      case "GroupEvent":
        return this.groups.handle({ ...ev, kind: ev.groupEventKind });
      case "KeyPackagesLowEvent":
        await this.groups.mls.keyPackages.replenish(KEY_PACKAGE_TARGET);
        return;
      case "PreKeysLowEvent": {
        const n = await this.keys.topUp();
        if (n.oneTimePreKeys || n.oneTimeKyberPreKeys) await this.emit("preKeysToppedUp", n);
        return;
      }
      default: {
        const other = ev as { id?: string | null };
        if (other.id) return this.ack(other.id); // kinds this SDK does not handle (e.g. group events) yet
      }
    }
  }

  /** A live-only envelope: decrypted and handed to the call machine; never stored, never acknowledged. */
  private async handleLive(ev: LiveEnvelopeEvent): Promise<void> {
    const env = ev.envelope;
    const from = { userId: env.senderUserId, deviceId: env.senderDeviceId };
    let content;
    try {
      content = decodeContent(await this.decryptLive(from, env.type, env.body));
    } catch (err) {
      return this.emit("undecryptable", { envelopeId: env.id, from, reason: (err as Error)?.message ?? String(err) });
    }
    // Only call signaling travels live in this SDK; other live content is not for it.
    if (content.body.kind === "call") await this.calls.receive(from, content.body.signal, content.sentTo);
  }

  /** Decrypts a live envelope; its ratchet step is committed to the store in one transaction. */
  private decryptLive(from: Address, type: number, body: string) {
    return this.crypto.run(async () => {
      const staged = this.directory.signalKv;
      staged.begin();
      let p;
      try {
        p = await this.signal.decrypt(this.self, from, type, body);
      } catch (err) {
        staged.rollback();
        throw err;
      }
      await this.store.apply({ kv: staged.take() });
      return p;
    });
  }

  /** Queued, not awaited: the next item is handled while this one's acknowledgement is in flight (batched). */
  private async ack(id: string): Promise<void> {
    void this.acks.add(id);
  }

  /** Arms self-destruct timers from the store (what expired while closed goes at once). */
  private sweepExpired() {
    return this.expiry.sweep();
  }

  private fail(err: unknown) {
    const e = err instanceof Error ? err : new Error(String(err));
    this.emit("error", e).catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    this.calls.close();
    for (const stop of this.stops.splice(0)) stop();
    this.expiry.stop();
    await this.keys.stop();
    await this.inbox.run(async () => {});
    await this.acks.flush();
    await this.ws?.dispose();
    this.ws = null;
    await this.crypto.run(() => this.directory.close());
  }
}

/** A body the receiving SDK would refuse is refused here, as bad input. */
function outgoing(body: SendableBody): SendableBody {
  try {
    return checkOutgoing(body);
  } catch (err) {
    throw new VignetteError((err as Error).message, "BAD_USER_INPUT");
  }
}

const pageLimit = (n: number | undefined) => Math.max(1, Math.min(MAX_PAGE, Math.floor(n ?? DEFAULT_PAGE)));
