// The SDK's public surface: `import { VignetteClient } from "vignette-messaging/client"`.
export { VignetteClient, VignetteError, DEFAULT_SERVER } from "./client.ts";
export type { ClientEvents, ClientOptions, ReceivedMessage, Sendable, SentAction } from "./client.ts";
export type { MessageBody, MessageKind, Content, ReplyRef, RsvpAnswer, SendableBody, AttachmentKind } from "./content.ts";
export type { ReactionEvent, EditEvent, VoteEvent, RsvpEvent } from "./conversation.ts";
export type { StoredMessage, MessageRecord, Reaction, Tally, AccountStore, WriteBatch } from "./store/types.ts";
export type { SendResult } from "./messaging.ts";
export { AccountDirectory, FileKeyValueStore } from "./account-store.ts";
export { SqliteAccountStore } from "./store/sqlite-store.ts";
export { AttachmentIntegrityError, type AttachmentPointer, type Progress, type UploadOptions } from "./attachments/attachments.ts";
export type { GatewaySubscription, WebPushSubscriptionLike } from "./push.ts";
export type { Calls, CallsOptions, IceServer } from "./calls/calls.ts";
export type { CallEvent } from "./calls/machine.ts";
export type { CallSignal, EndReason, IceCandidate } from "./calls/signals.ts";
