// Users as the app names them (a username or a user id) and what this device knows of their identity: safety
// numbers per device, and the event when a contact's identity key changes.
import type { ProtocolAddress, PublicKey } from "@signalapp/libsignal-client";
import { UserByIdDocument, UserByUsernameDocument } from "./generated/graphql.ts";
import { VignetteError, wrap } from "./errors.ts";
import type { SignalDevice } from "./signal/device.ts";
import type { HttpTransport } from "./transport.ts";

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface UsersDeps {
  selfUserId: string;
  http: HttpTransport;
  /** Replaced by resetIdentity, so asked for each time. */
  signal(): SignalDevice;
  deviceIds(userId: string): Promise<number[]>;
  safetyNumberChanged(event: { userId: string; deviceId: number; safetyNumber: string }): void;
}

export class Users {
  /** Usernames seen so far: a user's name is looked up once per client. */
  private usernames = new Map<string, string | null>();
  constructor(private readonly d: UsersDeps) {}

  async resolve(who: string): Promise<string> {
    if (UUID.test(who)) return who.toLowerCase();
    const { userByUsername } = await wrap(() => this.d.http.request(UserByUsernameDocument, { username: who }));
    if (!userByUsername) throw new VignetteError(`no user named ${who}`, "NOT_FOUND");
    this.usernames.set(userByUsername.id, userByUsername.username ?? null);
    return userByUsername.id;
  }

  async usernameOf(userId: string): Promise<string | null> {
    if (!this.usernames.has(userId)) {
      const { user } = await wrap(() => this.d.http.request(UserByIdDocument, { id: userId }));
      this.usernames.set(userId, user?.username ?? null);
    }
    return this.usernames.get(userId) ?? null;
  }

  async safetyNumbers(who: string): Promise<{ deviceId: number; safetyNumber: string }[]> {
    const userId = await this.resolve(who);
    const signal = this.d.signal();
    const out = [];
    for (const deviceId of await this.d.deviceIds(userId)) {
      const key = await signal.remoteIdentity(userId, deviceId);
      if (key) out.push({ deviceId, safetyNumber: signal.safetyNumber(this.d.selfUserId, userId, key) });
    }
    return out;
  }

  /** SignalDevice's report of a new identity key, as the app's event. */
  identityChanged(address: ProtocolAddress, key: PublicKey): void {
    const userId = address.name();
    const safetyNumber = this.d.signal().safetyNumber(this.d.selfUserId, userId, key);
    this.d.safetyNumberChanged({ userId, deviceId: address.deviceId(), safetyNumber });
  }
}
