// Builds every service from the same dependencies. Services call each other only through what is passed here.
import { createMemoryPresenceStore, type PresenceStore } from "./live/presence-store.ts";
import type { Actor, ServiceDeps } from "./deps.ts";
import { createDevicesService } from "./accounts/service.ts";
import { createInboxService, type InboxService } from "./inbox/service.ts";
import { createKeysService } from "./keys/service.ts";
import { createMlsServices } from "./groups/wiring.ts";
import { createMessagesService, type MessagesService, type Page } from "./messages/service.ts";
import { createRealtimeService } from "./realtime/service.ts";
import { createAttachmentsService } from "./attachments/service.ts";

export function createServices(deps: ServiceDeps, presenceStore: PresenceStore = createMemoryPresenceStore()) {
  const report = (what: string) => (err: unknown) => deps.logger.warn({ err: (err as Error).message }, what);
  // The key directory and the device registry tell devices about changes through their inbox queues.
  let inbox: InboxService;
  let messages: MessagesService;
  const keys = createKeysService(deps, { preKeysLow: (u, d, status) => inbox.preKeysLow(u, d, status) });
  const devices = createDevicesService(deps, keys, {
    deviceListChanged: (userId) => void messages.deviceListChanged(userId).catch(report("device list event not queued")),
  });
  inbox = createInboxService(deps, keys);
  messages = createMessagesService(deps, inbox);
  const mls = createMlsServices(deps, inbox);
  // A group's id works wherever a conversation id is asked: for typing its members are its participants...
  const participants = {
    ...messages,
    isParticipant: async (userId: string, conversationId: string) =>
      (await messages.isParticipant(userId, conversationId)) || (await mls.groups.isMember(userId, conversationId)),
  };
  const realtime = createRealtimeService(deps, participants, presenceStore);
  // ... and for the message history.
  const history = async (actor: Actor, conversationId: string, page: Page) =>
    (await mls.groups.isMember(actor.userId, conversationId))
      ? mls.groups.history(actor, conversationId.toLowerCase(), page)
      : messages.messages(actor, conversationId, page);
  const attachments = createAttachmentsService(deps);
  return { deps, keys, devices, inbox, messages, realtime, history, attachments, ...mls };
}

export type Services = ReturnType<typeof createServices>;
