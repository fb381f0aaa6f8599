// An account directory's life before and beside a running client: enrolling it (register or link), opening it, and
// re-registering its Signal identity. VignetteClient's static constructors and resetIdentity() are built on these.
import type { ProtocolAddress, PublicKey } from "@signalapp/libsignal-client";
import { AccountDirectory, type AccountInfo } from "./account-store.ts";
import { LinkDeviceDocument, RegisterAccountDocument, UserByIdDocument } from "./generated/graphql.ts";
import { VignetteError, wrap } from "./errors.ts";
import { ONE_TIME_KEY_TARGET } from "./prekeys.ts";
import { SignalDevice } from "./signal/device.ts";
import { HttpTransport } from "./transport.ts";

export const DEFAULT_SERVER = "http://localhost:8091/graphql";

type RegistrationKeys = Awaited<ReturnType<SignalDevice["registrationKeys"]>>;
/** Asks the server for this device's credentials, given the keys it publishes. */
export type Enroll = (keys: RegistrationKeys) => Promise<Omit<AccountInfo, "server">>;
/** Where SignalDevice reports a contact's new identity key. */
export type IdentityListener = (address: ProtocolAddress, key: PublicKey) => void;

/** What a client is made of: credentials, the directory, and this device's Signal state. */
export interface OpenedAccount {
  info: AccountInfo;
  directory: AccountDirectory;
  signal: SignalDevice;
}

export const registerWith =
  (server: string, args: { username?: string | null; deviceName?: string }): Enroll =>
  async (keys) => {
    const { registerAccount } = await new HttpTransport(server).request(RegisterAccountDocument, {
      input: { username: args.username ?? null, deviceName: args.deviceName ?? null, keys },
    });
    return { ...registerAccount, username: args.username?.trim().toLowerCase() ?? null };
  };

export const linkWith =
  (server: string, args: { linkToken: string; deviceName?: string }): Enroll =>
  async (keys) => {
    const { linkDevice } = await new HttpTransport(server).request(LinkDeviceDocument, {
      input: { linkToken: args.linkToken, deviceName: args.deviceName ?? null, keys },
    });
    const { user } = await new HttpTransport(server, linkDevice.token).request(UserByIdDocument, { id: linkDevice.userId });
    return { ...linkDevice, username: user?.username ?? null };
  };

/** A new directory with a fresh identity, enrolled on the server; refuses a directory that already holds an account. */
export async function enrollDirectory(dir: string, server: string, enroll: Enroll, onIdentity: IdentityListener): Promise<OpenedAccount> {
  const directory = await AccountDirectory.open(dir);
  if (await directory.readInfo()) {
    await directory.close();
    throw new VignetteError(`an account already exists in ${dir}`, "ACCOUNT_EXISTS");
  }
  const signal = await SignalDevice.open(directory.signalKv, onIdentity);
  const keys = await freshKeys(directory, signal);
  const creds = await wrap(() => enroll(keys)).catch((err) => (directory.close(), Promise.reject(err)));
  const info: AccountInfo = { server, ...creds };
  await directory.writeInfo(info);
  return { info, directory, signal };
}

export async function openDirectory(dir: string, onIdentity: IdentityListener): Promise<OpenedAccount> {
  const directory = await AccountDirectory.open(dir);
  const info = await directory.readInfo();
  if (!info) {
    await directory.close();
    throw new VignetteError(`no account in ${dir}: register or link first`, "NO_ACCOUNT");
  }
  return { info, directory, signal: await SignalDevice.open(directory.signalKv, onIdentity) };
}

/** Drops this device's Signal identity, sessions and pre-keys (before re-registering): a fresh identity replaces them. */
export async function wipeSignalState(directory: AccountDirectory, onIdentity: IdentityListener): Promise<SignalDevice> {
  const kv = [];
  for (const prefix of ["self/", "session/", "prekey/", "signed/", "kyber/"]) {
    for (const key of await directory.kv.list(prefix)) kv.push({ key, value: null });
  }
  await directory.kv.apply({ kv });
  return SignalDevice.open(directory.signalKv, onIdentity);
}

/** The keys a device publishes when it (re)registers; 200 pre-keys and their bookkeeping in one transaction. */
export async function freshKeys(directory: AccountDirectory, signal: SignalDevice): Promise<RegistrationKeys> {
  directory.signalKv.begin();
  const keys = await signal.registrationKeys(ONE_TIME_KEY_TARGET).catch((err) => (directory.signalKv.rollback(), Promise.reject(err)));
  await directory.signalKv.commit();
  return keys;
}
