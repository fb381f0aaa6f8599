// The WebSocket connections this node holds, by device, so a revocation can close them at once.
import type { WebSocket } from "ws";
import type { Actor } from "../deps.ts";

// Close codes of our own (graphql-ws keeps 44xx/45xx): a client may reconnect after any of them.
export const CLOSE_TOO_MANY_CONNECTIONS = 4029;
export const CLOSE_SLOW_CONSUMER = 4013;
export const CLOSE_UNAVAILABLE = 4503;

const key = (a: Actor) => `${a.userId}:${a.deviceId}`;

export class ConnectionRegistry {
  private byDevice = new Map<string, Set<WebSocket>>();

  add(actor: Actor, socket: WebSocket): void {
    const k = key(actor);
    let set = this.byDevice.get(k);
    if (!set) this.byDevice.set(k, (set = new Set()));
    set.add(socket);
  }

  remove(actor: Actor, socket: WebSocket): void {
    const k = key(actor);
    const set = this.byDevice.get(k);
    if (!set) return;
    set.delete(socket);
    if (set.size === 0) this.byDevice.delete(k);
  }

  count(actor: Actor): number {
    return this.byDevice.get(key(actor))?.size ?? 0;
  }

  get size(): number {
    let n = 0;
    for (const s of this.byDevice.values()) n += s.size;
    return n;
  }

  /** The devices holding sockets here. */
  *devices(): IterableIterator<Actor> {
    for (const k of this.byDevice.keys()) {
      const at = k.lastIndexOf(":");
      yield { userId: k.slice(0, at), deviceId: Number(k.slice(at + 1)) };
    }
  }

  /** Closes every socket of the device with 4403, the code graphql-ws uses for Forbidden. */
  revoke(actor: Actor): number {
    const set = this.byDevice.get(key(actor));
    if (!set) return 0;
    for (const socket of set) socket.close(4403, "device deactivated");
    this.byDevice.delete(key(actor));
    return set.size;
  }
}
