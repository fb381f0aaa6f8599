// Sending: one Signal envelope per device of the recipient, plus sync copies for this account's other devices,
// with Signal-Server's device-set protocol: on MISMATCHED_DEVICES / STALE_DEVICES the device lists are refetched,
// stale sessions dropped, and the send retried (bounded) under the same clientMessageId so it stays idempotent.
import { randomUUID } from "node:crypto";
import { encodeContent, serverMessageType, type Content, type ReplyRef, type SendableBody } from "./content.ts";
import { ClaimPreKeyBundlesDocument, DevicesDocument, SendMessageDocument, type MessageType } from "./generated/graphql.ts";
import type { Mutex } from "./emitter.ts";
import { VignetteError } from "./errors.ts";
import type { SignalDevice } from "./signal/device.ts";
import { GraphQLRequestError, type HttpTransport } from "./transport.ts";

export interface Address {
  userId: string;
  deviceId: number;
}

interface DeviceRef {
  deviceId: number;
  registrationId: number;
}

interface EnvelopeOut {
  deviceId: number;
  registrationId: number;
  type: number;
  body: string;
}

export interface SendResult {
  messageId: string;
  clientMessageId: string;
  serverTimestamp: string;
  sentAt: number;
  attempts: number;
}

export class Sender {
  /** Device lists as last seen; a mismatch from the server is what refreshes them. */
  private deviceCache = new Map<string, DeviceRef[]>();

  constructor(
    private self: Address,
    private http: HttpTransport,
    private device: () => SignalDevice,
    private crypto: Mutex,
    readonly maxAttempts = 4,
  ) {}

  async devicesOf(userId: string, refresh = false): Promise<DeviceRef[]> {
    let list = refresh ? undefined : this.deviceCache.get(userId);
    if (!list) {
      const { devices } = await this.http.request(DevicesDocument, { userId });
      list = devices.map((d) => ({ deviceId: d.deviceId, registrationId: d.registrationId }));
      this.deviceCache.set(userId, list);
    }
    return list;
  }

  forgetDevices(userId: string): void {
    this.deviceCache.delete(userId);
  }

  /** Encrypts for each device, setting up a PQXDH session from a freshly claimed bundle where there is none. */
  private async encryptFor(userId: string, devices: DeviceRef[], plaintext: Uint8Array<ArrayBuffer>): Promise<EnvelopeOut[]> {
    const out: EnvelopeOut[] = [];
    for (const d of devices) {
      const known = await this.device().sessionRegistrationId(userId, d.deviceId);
      // A different registration id means the device was re-registered: its old session is useless.
      if (known !== undefined && known !== d.registrationId) await this.device().forgetSession(userId, d.deviceId);
      let registrationId = d.registrationId;
      if (known === undefined || known !== d.registrationId) {
        const { claimPreKeyBundles } = await this.http.request(ClaimPreKeyBundlesDocument, { userId, deviceId: d.deviceId });
        const bundle = claimPreKeyBundles[0];
        if (!bundle) throw new VignetteError(`device ${d.deviceId} of ${userId} has no keys`, "NOT_FOUND");
        await this.device().processBundle(this.self, bundle);
        registrationId = bundle.registrationId;
      }
      const env = await this.device().encrypt(this.self, { userId, deviceId: d.deviceId }, plaintext);
      out.push({ deviceId: d.deviceId, registrationId, ...env });
    }
    return out;
  }

  /** Sends one message; resolves once the server committed it (online: once it was handed to connected devices). */
  async send(
    recipientUserId: string,
    body: SendableBody,
    opts: { expiresInSeconds?: number; clientMessageId?: string; replyTo?: ReplyRef; online?: boolean } = {},
  ): Promise<SendResult> {
    const clientMessageId = opts.clientMessageId ?? randomUUID();
    const sentAt = Date.now();
    const noteToSelf = recipientUserId === this.self.userId;
    const content: Omit<Content, "v"> = {
      sentAt,
      body,
      ...(opts.expiresInSeconds ? { expiresInSeconds: opts.expiresInSeconds } : {}),
      ...(opts.replyTo ? { replyTo: opts.replyTo } : {}),
    };
    const sync = encodeContent({ ...content, sentTo: recipientUserId });
    const direct = noteToSelf ? sync : encodeContent(content);

    for (let attempt = 1; ; attempt++) {
      const own = (await this.devicesOf(this.self.userId)).filter((d) => d.deviceId !== this.self.deviceId);
      const theirs = noteToSelf ? own : await this.devicesOf(recipientUserId);
      const { envelopes, syncEnvelopes } = await this.crypto.run(async () => ({
        envelopes: await this.encryptFor(recipientUserId, theirs, direct),
        syncEnvelopes: noteToSelf ? [] : await this.encryptFor(this.self.userId, own, sync),
      }));
      try {
        const { sendMessage } = await this.http.request(SendMessageDocument, {
          input: {
            recipientUserId,
            clientMessageId,
            messageType: (serverMessageType[body.kind] ?? "OTHER") as MessageType,
            expiresInSeconds: opts.expiresInSeconds ?? null,
            envelopes,
            syncEnvelopes,
            ...(opts.online ? { online: true } : {}),
          },
        });
        return { ...sendMessage, clientMessageId, sentAt, attempts: attempt };
      } catch (err) {
        if (!(err instanceof GraphQLRequestError) || attempt >= this.maxAttempts) throw err;
        if (!(await this.repair(err))) throw err;
      }
    }
  }

  /** Applies a device-set error; false when the error is of another kind. */
  private async repair(err: GraphQLRequestError): Promise<boolean> {
    const ext = err.extensions as { userId?: string; extraDevices?: number[]; staleDevices?: number[] };
    if (err.code !== "MISMATCHED_DEVICES" && err.code !== "STALE_DEVICES") return false;
    const userId = ext.userId;
    if (!userId) return false;
    this.forgetDevices(userId);
    await this.crypto.run(async () => {
      for (const d of [...(ext.extraDevices ?? []), ...(ext.staleDevices ?? [])]) await this.device().forgetSession(userId, d);
    });
    return true;
  }
}
