// Consent: message requests, blocking, reports and presence privacy. Other domains ask it, through small calls
// wired in src/app.ts, whether to deliver a send (a blocked sender's sends are stored for the sender alone), whether
// live state may pass (presence, typing) and who a first message's recipient has accepted.
// - A user accepts another by writing to them or by acceptMessageRequest. Until the recipient of a first message
//   accepts its sender, the sender sees none of the recipient's presence, last seen, typing, delivered or read
//   status (the receipts' statements embed `acceptedSql`).
// - A block is silent: the blocked user's sends answer as usual, their typing is dropped, the blocker's key packages
//   are not handed to them (so they cannot add the blocker to a group), and neither sees the other's presence.
import type { Actor, ServiceDeps } from "../deps.ts";
import { badInput, notFound } from "../errors.ts";
import { channels, type ConsentChanged } from "../live/channels.ts";
import { MAX_REPORT_EXCERPT, MAX_REPORT_REASON, maySeePresence, pairKey, reportText, type PresenceVisibility } from "./rules.ts";
import { createConsentStore, type MessageRequest } from "./store.ts";

export * from "./rules.ts";
export { acceptedSql, type MessageRequest } from "./store.ts";

/** What consent asks of the other domains. */
export interface ConsentPorts {
  userExists(userId: string): Promise<boolean>;
  /** The other user of a 1:1 conversation the user takes part in; null for a group or none. */
  peerOf(userId: string, conversationId: string): Promise<string | null>;
  coMembers(userId: string): Promise<string[]>;
  /** A 1:1 message the actor can see, with what a report records of it; null when none. */
  reportable(actor: Actor, messageId: string): Promise<{ conversationId: string; senderUserId: string } | null>;
}

// Contacts are never taken back, so "already recorded" is a fact a node may remember; the bound keeps it small.
const KNOWN_CONTACTS = 100_000;

export type ConsentService = ReturnType<typeof createConsentService>;

export function createConsentService(deps: ServiceDeps, ports: ConsentPorts) {
  const store = createConsentStore(deps);
  const known = new Map<string, true>();
  const remember = (k: string) => {
    known.set(k, true);
    if (known.size > KNOWN_CONTACTS) known.delete(known.keys().next().value!);
  };

  /** Tells open presence and typing streams that watch (or are held by) these users to re-read consent. */
  const changed = (...userIds: string[]) =>
    Promise.all(userIds.map((userId) => deps.bus.publish(channels.presence(userId), { consentChanged: true, userId } satisfies ConsentChanged)));

  /**
   * These sends were taken (stored, or published live): each sender accepts its recipient (a reply accepts a
   * request). Only taken ones: a send refused by its device-set check made no contact.
   */
  async function sent(pairs: { from: string; to: string }[]): Promise<void> {
    const fresh = new Map<string, { from: string; to: string }>();
    for (const p of pairs) if (p.from !== p.to && !known.has(pairKey(p.from, p.to))) fresh.set(pairKey(p.from, p.to), p);
    if (fresh.size === 0) return;
    await store.addContacts([...fresh.values()]);
    for (const k of fresh.keys()) remember(k);
    await changed(...new Set([...fresh.values()].map((p) => p.from)));
  }

  async function requireUser(actor: Actor, userId: string) {
    const id = userId.toLowerCase();
    if (id === actor.userId) throw badInput("that is your own account");
    if (!(await ports.userExists(id))) throw notFound("no such user");
    return id;
  }

  async function acceptRequest(actor: Actor, userId: string): Promise<boolean> {
    const id = await requireUser(actor, userId);
    await store.addContacts([{ from: actor.userId, to: id }]);
    remember(pairKey(actor.userId, id));
    await changed(actor.userId);
    return true;
  }

  async function block(actor: Actor, userId: string): Promise<boolean> {
    const id = await requireUser(actor, userId);
    await store.block(actor.userId, id);
    await changed(actor.userId, id);
    return true;
  }

  async function unblock(actor: Actor, userId: string): Promise<boolean> {
    const id = await requireUser(actor, userId);
    await store.unblock(actor.userId, id);
    await changed(actor.userId, id);
    return true;
  }

  async function report(actor: Actor, messageId: string, reason?: string | null, excerpt?: string | null): Promise<boolean> {
    const text = { reason: reportText(reason, MAX_REPORT_REASON, "reason"), excerpt: reportText(excerpt, MAX_REPORT_EXCERPT, "excerpt") };
    const m = await ports.reportable(actor, messageId.toLowerCase());
    if (!m) throw notFound("no such message");
    await store.addReport({ reporterUserId: actor.userId, reporterDeviceId: actor.deviceId, messageId: messageId.toLowerCase(), ...m, ...text });
    deps.logger.info({ reporter: actor.userId, messageId }, "message reported");
    return true;
  }

  /** The users among `userIds` whose presence `viewer` may see. */
  async function presenceVisible(viewer: string, userIds: string[]): Promise<Set<string>> {
    const ids = [...new Set(userIds.map((u) => u.toLowerCase()))];
    const others = ids.filter((u) => u !== viewer);
    const [relations, groupMates] = await Promise.all([
      store.relations(viewer, others),
      others.length ? ports.coMembers(viewer).then((m) => new Set(m)) : new Set<string>(),
    ]);
    return new Set(ids.filter((u) => u === viewer || (relations.has(u) && maySeePresence(viewer, u, relations.get(u)!, groupMates.has(u)))));
  }

  /**
   * Whether the actor's typing in this conversation is published: in a 1:1 conversation only once the actor
   * accepted the other user and while that user has not blocked the actor. Every subscription also drops the
   * typing of users it blocked or was blocked by (`blockedEitherWay`, read when it starts and again on each
   * ConsentChanged of its user): groups rely on that.
   */
  async function typingPasses(actor: Actor, conversationId: string): Promise<boolean> {
    const peer = await ports.peerOf(actor.userId, conversationId);
    if (!peer || peer === actor.userId) return true;
    const [accepted, blocked] = await Promise.all([
      store.relations(peer, [actor.userId]).then((r) => r.get(actor.userId)?.accepted ?? false),
      store.blockedPairs([{ from: actor.userId, to: peer }]),
    ]);
    return accepted && blocked.size === 0;
  }

  return {
    sent,
    acceptRequest,
    block,
    unblock,
    report,
    presenceVisible,
    typingPasses,
    blockedEitherWay: (userId: string) => store.blockedEitherWay(userId),
    /** The users among `recipients` who blocked `sender` (their key packages are not handed to it). */
    blockersOf: async (sender: string, recipients: string[]) => {
      const blocked = await store.blockedPairs(recipients.map((to) => ({ from: sender, to })));
      return new Set(recipients.filter((r) => blocked.has(pairKey(sender, r))));
    },
    requests: (actor: Actor): Promise<MessageRequest[]> => store.requests(actor.userId),
    setPresenceVisibility: async (actor: Actor, v: PresenceVisibility) => (await store.setVisibility(actor.userId, v), await changed(actor.userId), v),
    presenceVisibility: (actor: Actor) => store.visibility(actor.userId),
  };
}
