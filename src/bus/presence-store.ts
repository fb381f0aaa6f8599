// Where presence lives: which device connections are live, per node, until when; and each user's last-seen time.
// With Redis every node shares it and an entry its node stops refreshing (the node died) expires by itself; without
// Redis it is a map in this one process.
import { Redis } from "ioredis";

export interface DeviceConnection {
  userId: string;
  deviceId: number;
  nodeId: string;
}

export interface PresenceStore {
  /** Marks these connections live until expiresAtMs (insert or refresh). */
  put(entries: DeviceConnection[], expiresAtMs: number): Promise<void>;
  remove(entry: DeviceConnection): Promise<void>;
  /** Removes entries past their expiry and returns them; each one is returned to one caller only, across nodes. */
  reap(nowMs: number): Promise<DeviceConnection[]>;
  /** Users among these with at least one live connection. */
  online(userIds: string[], nowMs: number): Promise<Set<string>>;
  setLastSeen(userId: string, atMs: number): Promise<void>;
  lastSeen(userIds: string[]): Promise<Map<string, number>>;
  close(): Promise<void>;
}

const PUT_CHUNK = 1000;
const member = (e: DeviceConnection) => `${e.userId}|${e.deviceId}|${e.nodeId}`;
const parse = (m: string): DeviceConnection => {
  const [userId, deviceId, nodeId] = m.split("|");
  return { userId, deviceId: Number(deviceId), nodeId };
};

export function createMemoryPresenceStore(): PresenceStore {
  const live = new Map<string, number>();
  const seen = new Map<string, number>();
  return {
    async put(entries, expiresAtMs) {
      for (const e of entries) live.set(member(e), expiresAtMs);
    },
    async remove(e) {
      live.delete(member(e));
    },
    async reap(now) {
      const out: DeviceConnection[] = [];
      for (const [m, exp] of live) if (exp <= now) (live.delete(m), out.push(parse(m)));
      return out;
    },
    async online(userIds, now) {
      const wanted = new Set(userIds);
      const out = new Set<string>();
      for (const [m, exp] of live) {
        const { userId } = parse(m);
        if (exp > now && wanted.has(userId)) out.add(userId);
      }
      return out;
    },
    async setLastSeen(userId, at) {
      seen.set(userId, at);
    },
    async lastSeen(userIds) {
      return new Map(userIds.filter((u) => seen.has(u)).map((u) => [u, seen.get(u)!]));
    },
    async close() {},
  };
}

/**
 * Keys: `<prefix>presence:conns` (sorted set of every live connection, score = expiry, for the reaper),
 * `<prefix>presence:user:<userId>` (sorted set of that user's connections, score = expiry),
 * `<prefix>presence:lastseen` (hash userId -> ms).
 */
export function createRedisPresenceStore(url: string, prefix: string): PresenceStore {
  const redis = new Redis(url, { maxRetriesPerRequest: 2, retryStrategy: (n: number) => Math.min(n * 100, 2000) });
  redis.on("error", () => {}); // the bus logs Redis trouble; presence degrades until it is back
  const all = `${prefix}presence:conns`;
  const user = (u: string) => `${prefix}presence:user:${u}`;
  const seen = `${prefix}presence:lastseen`;
  // Per-user sets live a while past their last entry so an abandoned one does not stay forever.
  const userKeyTtlSec = 24 * 3600;
  return {
    async put(entries, exp) {
      if (entries.length === 0) return;
      const p = redis.pipeline();
      // A heartbeat refreshes every connection of this node: the node-wide set takes them in a few variadic ZADDs
      // rather than one command each (a third of the commands and of the garbage a beat leaves).
      for (let i = 0; i < entries.length; i += PUT_CHUNK) {
        const args: (number | string)[] = [];
        for (const e of entries.slice(i, i + PUT_CHUNK)) args.push(exp, member(e));
        p.zadd(all, ...args);
      }
      for (const e of entries) {
        const key = user(e.userId);
        p.zadd(key, exp, member(e));
        p.expire(key, userKeyTtlSec);
      }
      await p.exec();
    },
    async remove(e) {
      await redis.pipeline().zrem(all, member(e)).zrem(user(e.userId), member(e)).exec();
    },
    async reap(now) {
      const expired = await redis.zrangebyscore(all, "-inf", now, "LIMIT", 0, 1000);
      const out: DeviceConnection[] = [];
      for (const m of expired) {
        // ZREM answers 1 to exactly one node: that one reports the device gone.
        if ((await redis.zrem(all, m)) === 1) {
          const e = parse(m);
          await redis.zrem(user(e.userId), m);
          out.push(e);
        }
      }
      return out;
    },
    async online(userIds, now) {
      const p = redis.pipeline();
      for (const u of userIds) p.zcount(user(u), `(${now}`, "+inf");
      const res = (await p.exec()) ?? [];
      return new Set(userIds.filter((_, i) => Number(res[i]?.[1] ?? 0) > 0));
    },
    async setLastSeen(userId, at) {
      await redis.hset(seen, userId, String(at));
    },
    async lastSeen(userIds) {
      if (userIds.length === 0) return new Map();
      const vals = await redis.hmget(seen, ...userIds);
      const out = new Map<string, number>();
      userIds.forEach((u, i) => vals[i] && out.set(u, Number(vals[i])));
      return out;
    },
    async close() {
      redis.disconnect();
    },
  };
}
