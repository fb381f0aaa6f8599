// Sending for tests: opaque envelopes addressed to every active device, as a client would build them.
import { randomUUID } from "node:crypto";
import {
  AcceptMessageRequestDocument,
  AckEnvelopesDocument,
  DevicesDocument,
  MessagesDocument,
  PollInboxDocument,
  SendMessageDocument,
  SetTypingDocument,
  type SendMessageInput,
  type TypingSubscription,
} from "../../src/client/generated/graphql.ts";
import type { Collector } from "./live.ts";
import type { TestDevice } from "./accounts.ts";

export const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
export const unb64 = (s: string) => Buffer.from(s, "base64").toString("utf8");

export async function devicesOf(from: TestDevice, userId: string) {
  return (await from.http.request(DevicesDocument, { userId })).devices;
}

/** Builds a SendMessageInput with an opaque body per device of the recipient and per other device of the sender. */
export async function opaqueInput(
  from: TestDevice,
  toUserId: string,
  text: string,
  extra: Partial<SendMessageInput> = {},
): Promise<SendMessageInput> {
  const theirs = await devicesOf(from, toUserId);
  const own = toUserId === from.userId ? [] : (await devicesOf(from, from.userId)).filter((d) => d.deviceId !== from.deviceId);
  const env = (d: { deviceId: number; registrationId: number }) => ({
    deviceId: d.deviceId,
    registrationId: d.registrationId,
    type: 2,
    body: b64(`${text}@${d.deviceId}`),
  });
  return {
    recipientUserId: toUserId,
    clientMessageId: randomUUID(),
    messageType: "TEXT",
    envelopes: theirs.filter((d) => !(toUserId === from.userId && d.deviceId === from.deviceId)).map(env),
    syncEnvelopes: own.length ? own.map(env) : undefined,
    ...extra,
  };
}

export async function sendOpaque(from: TestDevice, toUserId: string, text: string, extra: Partial<SendMessageInput> = {}) {
  const input = await opaqueInput(from, toUserId, text, extra);
  const { sendMessage } = await from.http.request(SendMessageDocument, { input });
  return { ...sendMessage, input };
}

/** Polls the device's queue and acknowledges everything in it; returns the polled events. */
export async function ackAll(d: TestDevice) {
  const events = (await d.http.request(PollInboxDocument, { first: 500 })).inbox;
  const ids = events.flatMap((e) => ("id" in e ? [e.id] : []));
  if (ids.length) await d.http.request(AckEnvelopesDocument, { ids });
  return events;
}

/** A conversation's message metadata as the server answers it, newest first. */
export async function history(d: TestDevice, conversationId: string) {
  return (await d.http.request(MessagesDocument, { conversationId, first: 100 })).messages.edges.map((e) => e.node);
}

/** Sets typing until the subscription shows it (bounded): typing events sent before a subscription exists are lost. */
export async function refreshUntilSeen(
  who: TestDevice,
  conversationId: string,
  sub: Collector<TypingSubscription>,
) {
  for (let i = 0; i < 50 && sub.items.length === 0; i++) {
    await who.http.request(SetTypingDocument, { conversationId, isTyping: true });
    await sub.until((xs) => xs.length > 0, 300).catch(() => {});
  }
}

/** `recipient` accepts `sender`'s message requests: without it the sender sees no receipts, typing or presence of it. */
export async function accept(recipient: TestDevice, sender: TestDevice) {
  await recipient.http.request(AcceptMessageRequestDocument, { userId: sender.userId });
}
