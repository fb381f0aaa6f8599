// Account directories as SDK versions before the SQLite store wrote them (store/ with one file per key, account.json),
// built with the kept file-store module and the unchanged Signal layer and Sender, the way those versions did.
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { Mutex } from "../../src/client/emitter.ts";
import { RegisterAccountDocument } from "../../src/client/generated/graphql.ts";
import { Sender } from "../../src/client/messaging.ts";
import { SignalDevice } from "../../src/client/signal/device.ts";
import { StagedKeyValueStore } from "../../src/client/signal/kv.ts";
import { FileKeyValueStore, writeFileAtomic } from "../../src/client/store/legacy-files.ts";
import type { AccountInfo, MessageRecord } from "../../src/client/store/types.ts";
import { HttpTransport } from "../../src/client/transport.ts";

const json = (v: unknown) => new Uint8Array(Buffer.from(JSON.stringify(v), "utf8"));

export interface FileStoreAccount {
  dir: string;
  info: AccountInfo;
  kv: FileKeyValueStore;
  device: SignalDevice;
  /** Sends as the old client did and stores the sent message the way its MessageStore did (msg/<id>). */
  send(peerUserId: string, text: string): Promise<MessageRecord>;
}

/** Registers an account on the server and keeps it in dir in the file-store format. */
export async function fileStoreAccount(serverUrl: string, dir: string, username: string): Promise<FileStoreAccount> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const kv = await FileKeyValueStore.open(path.join(dir, "store"));
  const device = await SignalDevice.open(new StagedKeyValueStore(kv));
  const keys = await device.registrationKeys(100);
  const { registerAccount } = await new HttpTransport(serverUrl).request(RegisterAccountDocument, { input: { username, deviceName: null, keys } });
  const info: AccountInfo = { server: serverUrl, ...registerAccount, username };
  await writeFileAtomic(path.join(dir, "account.json"), JSON.stringify(info, null, 2));
  await kv.set("self/rotatedAt", json(Date.now()));
  const self = { userId: info.userId, deviceId: info.deviceId };
  const sender = new Sender(self, new HttpTransport(serverUrl, info.token), () => device, new Mutex());
  return {
    dir,
    info,
    kv,
    device,
    async send(peerUserId, text) {
      const r = await sender.send(peerUserId, { kind: "text", text });
      const m: MessageRecord = {
        messageId: r.messageId,
        conversationId: null,
        peerUserId,
        direction: "out",
        from: self,
        sentAt: r.sentAt,
        serverTimestamp: r.serverTimestamp,
        body: { kind: "text", text },
        expiresAt: null,
      };
      await kv.set(`msg/${m.messageId}`, json(m));
      return m;
    },
  };
}

/** Writes the other kinds of file-store entries: a received message, seen ids, a pending plaintext, a conversation. */
export async function addFileStoreEntries(kv: FileKeyValueStore, m: MessageRecord, extra: { seen: string[]; pending: [string, Uint8Array<ArrayBuffer>][] }) {
  await kv.set(`msg/${m.messageId}`, json(m));
  for (const id of extra.seen) await kv.set(`seen/${id}`, new Uint8Array([1]));
  for (const [id, p] of extra.pending) await kv.set(`pending/${id}`, p);
  if (m.conversationId) {
    await kv.set(`conv/${m.peerUserId}`, new Uint8Array(Buffer.from(m.conversationId)));
    await kv.set(`convpeer/${m.conversationId}`, new Uint8Array(Buffer.from(m.peerUserId)));
  }
}
