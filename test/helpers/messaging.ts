// Sending for tests: opaque envelopes addressed to every active device, as a client would build them.
import { randomUUID } from "node:crypto";
import {
  AcceptMessageRequestDocument,
  DevicesDocument,
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
