// VignetteClient: an end-to-end encrypted messenger for apps. It owns one device's account directory (Signal state,
// credentials, local messages) and wires the parts that do the work, each given only what it needs: the account's
// lifecycle (account-lifecycle.ts), devices (devices.ts), users and safety numbers (users.ts), sending (outgoing.ts
// over messaging.ts), history (history.ts), the connection (subscriptions.ts) and the inbox (inbox.ts over receive.ts).
// The public surface stays on this one class: apps call client.send(), not client.outgoing.send().
import path from "node:path";
import type { ProtocolAddress, PublicKey } from "@signalapp/libsignal-client";
import {
  DEFAULT_SERVER,
  enrollDirectory,
  freshKeys,
  linkWith,
  openDirectory,
  registerWith,
  wipeSignalState,
  type Enroll,
  type OpenedAccount,
} from "./account-lifecycle.ts";
import type { AccountDirectory, AccountInfo } from "./account-store.ts";
import { Attachments } from "./attachments/attachments.ts";
import { Calls, type CallsOptions } from "./calls/calls.ts";
import { Consent } from "./consent.ts";
import type { RsvpAnswer, Sendable } from "./content.ts";
import { Devices } from "./devices.ts";
import { AsyncEmitter, Mutex } from "./emitter.ts";
import { VignetteError, wrap } from "./errors.ts";
import type { ClientEvents, ReceivedMessage } from "./events.ts";
import { ExpiryTimers } from "./expiry.ts";
import { InboxDocument, ResetDeviceKeysDocument, TurnServersDocument } from "./generated/graphql.ts";
import { Groups, KEY_PACKAGE_TARGET } from "./groups.ts";
import { History } from "./history.ts";
import { InboxPipeline } from "./inbox.ts";
import { MessageStore, type StoredMessage } from "./message-store.ts";
import { Sender, type Address, type SendResult } from "./messaging.ts";
import { Outgoing, type SentAction } from "./outgoing.ts";
import { DEFAULT_ROTATION_INTERVAL_MS, PreKeyMaintainer } from "./prekeys.ts";
import { PushClient } from "./push.ts";
import type { SignalDevice } from "./signal/device.ts";
import { Subscriptions } from "./subscriptions.ts";
import { HttpTransport } from "./transport.ts";
import { Users } from "./users.ts";

export { VignetteError, DEFAULT_SERVER };
export type { ClientEvents, ReceivedMessage, Sendable, SentAction };
export { DEFAULT_PAGE, MAX_PAGE, MAX_SEARCH_LENGTH } from "./history.ts";

export interface ClientOptions {
  /** How often the signed pre-key and the last-resort Kyber key are replaced (default 7 days). */
  preKeyRotationIntervalMs?: number;
  /** Bound on automatic re-sends after a device-set error (default 4 attempts in all). */
  maxSendAttempts?: number;
  /** Call signaling: the ring timeout (default 60 s). */
  calls?: CallsOptions;
}

export class VignetteClient extends AsyncEmitter<ClientEvents> {
  readonly account: AccountInfo;
  readonly directory: AccountDirectory;
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
  private device: SignalDevice;
  private sender: Sender;
  /** libsignal's stores are read-modify-write: sending, receiving and key upkeep take turns on them. */
  private crypto = new Mutex();
  private expiry: ExpiryTimers;
  private users: Users;
  private deviceList: Devices;
  private history: History;
  private outgoing: Outgoing;
  private live: Subscriptions;
  private inbox: InboxPipeline;

  private constructor({ info, directory, signal }: OpenedAccount, options: ClientOptions) {
    super();
    this.account = info;
    this.directory = directory;
    this.device = signal;
    const http = (this.http = new HttpTransport(info.server, info.token));
    const store = (this.store = new MessageStore(directory.kv));
    const self = this.self;
    const fail = (e: unknown) => this.fail(e);
    const emit = <K extends keyof ClientEvents>(name: K, value: ClientEvents[K]) => this.emit(name, value);
    const resolveUser = (who: string) => this.users.resolve(who);
    const conversationId = (who: string) => this.history.conversationId(who);

    this.push = new PushClient(http);
    this.attachments = new Attachments(http, path.join(directory.dir, "tmp"));
    this.expiry = new ExpiryTimers(store, (e) => this.notify("expired", e, fail));
    this.sender = new Sender(self, http, () => this.device, this.crypto, options.maxSendAttempts);
    this.keys = new PreKeyMaintainer(() => this.device, http, directory.kv, this.crypto, options.preKeyRotationIntervalMs ?? DEFAULT_ROTATION_INTERVAL_MS, fail);
    this.deviceList = new Devices({ self, http, forgetDevices: (u) => this.sender.forgetDevices(u), close: () => this.close() });
    this.users = new Users({
      selfUserId: self.userId,
      http,
      signal: () => this.device,
      deviceIds: async (userId) => (await this.deviceList.list(userId)).map((d) => d.deviceId),
      safetyNumberChanged: (e) => this.notify("safetyNumberChanged", e, fail),
    });
    this.consent = new Consent({ http, kv: directory.kv, resolveUser, emit, fail });
    this.on("message", (m) => this.consent.seen(m));
    this.history = new History({ http, store, resolveUser });
    this.groups = new Groups({
      self,
      kv: directory.kv,
      http,
      store,
      resolveUser,
      emit: (event, value) => this.emit(event, value as ClientEvents[typeof event]),
      stored: (m) => this.expiry.schedule(m),
      unstored: (id) => this.expiry.clear(id),
      fail,
      ack: (id) => this.inbox.ack(id),
    });
    this.outgoing = new Outgoing({ self, http, store, kv: directory.kv, sender: this.sender, groups: this.groups, expiry: this.expiry, resolveUser, conversationId });
    this.calls = new Calls(
      {
        self,
        resolveUser,
        sendSignal: async (to, signal) => void (await wrap(() => this.sender.send(to, { kind: "call", signal }, { online: true }))),
        sendMissedCall: async (to, callId, video) => void (await this.send(to, { kind: "missedCall", callId, video })),
        emit: ({ type, ...event }) => this.emit(type, event as never),
        fail,
        turnServers: () => wrap(async () => (await http.request(TurnServersDocument)).turnServers),
      },
      options.calls,
    );
    this.live = new Subscriptions({ account: info, http, emit, fail, resolveUser, conversationId });
    this.inbox = new InboxPipeline({
      self,
      store,
      staged: directory.signalKv,
      crypto: this.crypto,
      signal: () => this.device,
      emit,
      http,
      expiry: this.expiry,
      sender: this.sender,
      groups: this.groups,
      calls: this.calls,
      keys: this.keys,
      isBlocked: (userId) => this.consent.isBlocked(userId),
      fail,
    });
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
    return VignetteClient.create(args.dir, server, args, registerWith(server, args));
  }

  /** Adds this directory as a new device of an existing account, with a link token made on one of its devices. */
  static async link(args: { dir: string; linkToken: string; deviceName?: string; server?: string } & ClientOptions) {
    const server = args.server ?? DEFAULT_SERVER;
    return VignetteClient.create(args.dir, server, args, linkWith(server, args));
  }

  private static async create(dir: string, server: string, options: ClientOptions, enroll: Enroll): Promise<VignetteClient> {
    // Signal state exists before the client does (its keys are what enrolls): identity changes reach it once it does.
    let client: VignetteClient | null = null;
    const account = await enrollDirectory(dir, server, enroll, (a, k) => client?.identityChanged(a, k));
    client = new VignetteClient(account, options);
    await client.keys.markRotated();
    // Without key packages on the server nobody could add this device to a group.
    await wrap(() => client.groups.mls.keyPackages.upload(KEY_PACKAGE_TARGET, true));
    return client;
  }

  /** Opens the account kept in dir. */
  static async open(dir: string, options: ClientOptions = {}): Promise<VignetteClient> {
    let client: VignetteClient | null = null;
    const account = await openDirectory(dir, (a, k) => client?.identityChanged(a, k));
    client = new VignetteClient(account, options);
    return client;
  }

  /** A one-time token for `link` on a new device. Only the primary device (device 1) may link others. */
  createLinkToken(): Promise<{ token: string; expiresAt: string }> {
    return this.deviceList.createLinkToken();
  }

  async devices(userId = this.userId) {
    return this.deviceList.list(userId);
  }

  /** Any device may deactivate itself; only the primary device (device 1) deactivates others. */
  deactivateDevice(deviceId: number): Promise<boolean> {
    return this.deviceList.deactivate(deviceId);
  }

  /**
   * Re-registers this device after its Signal state was lost or compromised: a new identity and new pre-keys
   * replace the old ones on the server, and every local session is dropped. Contacts see a safety-number change.
   */
  async resetIdentity(): Promise<void> {
    await this.crypto.run(async () => {
      this.device = await wipeSignalState(this.directory, (a, k) => this.identityChanged(a, k));
      const keys = await freshKeys(this.directory, this.device);
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
  resolveUser(who: string): Promise<string> {
    return this.users.resolve(who);
  }

  usernameOf(userId: string): Promise<string | null> {
    return this.users.usernameOf(userId);
  }

  /** Safety numbers with each device of a user this device has a session (or has had one) with. */
  safetyNumbers(who: string): Promise<{ deviceId: number; safetyNumber: string }[]> {
    return this.users.safetyNumbers(who);
  }

  private identityChanged(address: ProtocolAddress, key: PublicKey) {
    this.users.identityChanged(address, key);
  }

  // ---- sending -----------------------------------------------------------------------------------------------

  /**
   * Encrypts and sends to every device of the recipient (and sync copies to this account's other devices). replyTo
   * quotes a message of this conversation (its id and the start of its text travel with the reply).
   */
  send(to: string, message: Sendable, opts: { expiresInSeconds?: number; replyTo?: string } = {}): Promise<SendResult> {
    return this.outgoing.send(to, message, opts);
  }

  /**
   * A default self-destruct timer applied to every message sent to `who` (0 or null: none). For a group id it is the
   * group's shared setting (every member's SDK applies it); for a user it is this device's setting for that chat.
   */
  setDefaultTimer(who: string, seconds: number | null): Promise<void> {
    return this.outgoing.setDefaultTimer(who, seconds);
  }

  async noteToSelf(text: string): Promise<SendResult> {
    return this.send(this.userId, { kind: "noteToSelf", text });
  }

  // ---- reactions, edits, votes, RSVPs: sent in the conversation of the message they change ---------------------

  /** Reacts to a message with one emoji (replacing this account's earlier one); null takes the reaction back. */
  react(messageId: string, emoji: string | null): Promise<SentAction> {
    return this.outgoing.react(messageId, emoji);
  }

  /** Replaces the text of a message this account sent, within 24 hours; everyone keeps the edit history. */
  edit(messageId: string, text: string): Promise<SentAction> {
    return this.outgoing.edit(messageId, text);
  }

  /** Votes in a poll (option indices; one unless the poll allows several); [] takes the vote back. */
  vote(pollId: string, choices: number | number[]): Promise<SentAction> {
    return this.outgoing.vote(pollId, choices);
  }

  /** Answers an event's invitation. */
  rsvp(eventId: string, answer: RsvpAnswer): Promise<SentAction> {
    return this.outgoing.rsvp(eventId, answer);
  }

  /** Read receipts for messages (1:1 and group ones alike) to their senders. */
  markRead(messageIds: string[]): Promise<number> {
    return this.outgoing.markRead(messageIds);
  }

  /** Deletes a message here at once, and for everyone (the other side and your other devices) if asked. */
  deleteMessage(messageId: string, forEveryone: boolean): Promise<boolean> {
    return this.outgoing.deleteMessage(messageId, forEveryone);
  }

  /** Tells the other side of the conversation with `who` that you are typing (or stopped). */
  setTyping(who: string, isTyping: boolean): Promise<boolean> {
    return this.outgoing.setTyping(who, isTyping);
  }

  // ---- conversations and history -----------------------------------------------------------------------------

  conversationId(who: string): Promise<string> {
    return this.history.conversationId(who);
  }

  /**
   * Local history, newest first, with reactions, edits and tallies folded in: of one conversation (a username, user id
   * or group id) or of all. before: a message id (the oldest of the previous page) or a time; limit 50 by default.
   */
  messages(who?: string, opts: { before?: string | Date | number; limit?: number } = {}): Promise<StoredMessage[]> {
    return this.history.messages(who, opts);
  }

  /** Full-text search of the local history (on this device only), newest first; `in` keeps it to one conversation. */
  search(text: string, opts: { in?: string; limit?: number } = {}): Promise<StoredMessage[]> {
    return this.history.search(text, opts);
  }

  // ---- receiving ---------------------------------------------------------------------------------------------

  /** Connects: checks keys, then subscribes to the inbox (queued items first, then live) until close(). */
  async start(): Promise<void> {
    if (this.live.connected) return;
    this.live.connect();
    this.keys.start();
    // Self-destruct timers from the store; what expired while closed goes at once.
    await this.expiry.sweep();
    this.live.keep(InboxDocument, {}, (data) => this.inbox.take(data.inbox));
    await this.keys.topUp().then(
      (n) => (n.oneTimePreKeys || n.oneTimeKyberPreKeys) && this.notify("preKeysToppedUp", n, (e) => this.fail(e)),
      (e) => this.fail(e),
    );
    await this.groups.mls.keyPackages.replenish(KEY_PACKAGE_TARGET).catch((e) => this.fail(e));
    // Devices linked or deactivated while this one was away.
    void this.groups.reconcileOwnDevices().catch((e) => this.fail(e));
  }

  /** Live typing in the conversation with `who` (needs start()); returns a function that stops it. */
  watchTyping(who: string): Promise<() => void> {
    return this.live.watchTyping(who);
  }

  /** Live presence of some users (needs start()); returns a function that stops it. */
  watchPresence(who: string[]): Promise<() => void> {
    return this.live.watchPresence(who);
  }

  private fail(err: unknown) {
    const e = err instanceof Error ? err : new Error(String(err));
    this.emit("error", e).catch(() => {});
  }

  async close(): Promise<void> {
    this.inbox.stop();
    this.calls.close();
    this.live.stop();
    this.expiry.stop();
    await this.keys.stop();
    await this.inbox.drain();
    await this.live.dispose();
    await this.crypto.run(() => this.directory.close());
  }
}
