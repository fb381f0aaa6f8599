// Where presence lives: which device connections are live, per node, until when; and each user's last-seen time.
// With Redis every node shares it and an entry its node stops refreshing (the node died) expires by itself; without
// Redis it is a map in this one process.
import { connectRedis } from "./redis.ts";

export interface DeviceConnection {
  userId: string;
  deviceId: number;
  nodeId: string;
}

export interface PresenceStore {
  /** Marks these new connections live until expiresAtMs. */
  put(entries: DeviceConnection[], expiresAtMs: number): Promise<void>;
  /** Moves the expiry of connections already put (a node's heartbeat). */
  refresh(entries: DeviceConnection[], expiresAtMs: number): Promise<void>;
  remove(entry: DeviceConnection): Promise<void>;
  /** Removes entries past their expiry and returns them; each one is returned to one caller only, across nodes. */
  reap(nowMs: number): Promise<DeviceConnection[]>;
  /** Users among these with at least one live connection. */
  online(userIds: string[], nowMs: number): Promise<Set<string>>;
  /** Devices among these with a live connection on any node, as "userId:deviceId". */
  onlineDevices(devices: { userId: string; deviceId: number }[], nowMs: number): Promise<Set<string>>;
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
  // Per user, each of its connections ("deviceId|nodeId") and when it expires: a lookup reads only the users it
  // names (a scan of every connection, on every connect and disconnect, made a burst of N connects cost N²).
  const live = new Map<string, Map<string, number>>();
  const seen = new Map<string, number>();
  const connection = (e: DeviceConnection) => `${e.deviceId}|${e.nodeId}`;
  const put = async (entries: DeviceConnection[], expiresAtMs: number) => {
    for (const e of entries) {
      let mine = live.get(e.userId);
      if (!mine) live.set(e.userId, (mine = new Map()));
      mine.set(connection(e), expiresAtMs);
    }
  };
  const liveDevices = (userId: string, now: number) => {
    const out = new Set<number>();
    for (const [k, exp] of live.get(userId) ?? []) if (exp > now) out.add(Number(k.split("|")[0]));
    return out;
  };
  return {
    put,
    refresh: put,
    async remove(e) {
      const mine = live.get(e.userId);
      mine?.delete(connection(e));
      if (mine?.size === 0) live.delete(e.userId);
    },
    async reap(now) {
      const out: DeviceConnection[] = [];
      for (const [userId, mine] of live) {
        for (const [k, exp] of mine) {
          if (exp > now) continue;
          mine.delete(k);
          out.push(parse(`${userId}|${k}`));
        }
        if (mine.size === 0) live.delete(userId);
      }
      return out;
    },
    async online(userIds, now) {
      return new Set(userIds.filter((u) => liveDevices(u, now).size > 0));
    },
    async onlineDevices(devices, now) {
      const out = new Set<string>();
      for (const d of devices) if (liveDevices(d.userId, now).has(d.deviceId)) out.add(`${d.userId}:${d.deviceId}`);
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
 * Keys: `<prefix>presence:conns` (sorted set of every live connection, score = expiry: the one place expiry is kept),
 * `<prefix>presence:devices:<userId>` (set of that user's connections, changed only on connect, disconnect and reap;
 * named apart from the sorted sets that earlier versions kept per user),
 * `<prefix>presence:lastseen` (hash userId -> ms). A heartbeat therefore touches one key, in a few variadic ZADDs,
 * however many devices the node holds (it was two commands per device: 38,000 every 5 s at 19,000 connections);
 * only the first heartbeat after a lost connection writes the members again.
 */
export function createRedisPresenceStore(url: string, prefix: string): PresenceStore {
  const redis = connectRedis(url);
  redis.on("error", () => {}); // the bus logs Redis trouble; presence degrades until it is back
  const all = `${prefix}presence:conns`;
  const user = (u: string) => `${prefix}presence:devices:${u}`;
  const seen = `${prefix}presence:lastseen`;
  // Set when the connection dropped: Redis may be back empty (a restart), so the next heartbeat puts every
  // connection again, members included, instead of only moving expiries.
  let restore = false;
  redis.on("close", () => (restore = true));
  // In pipelines of PUT_CHUNK connections, awaited one after another, so a node with many connections does not
  // stall its event loop building one huge pipeline.
  async function put(entries: DeviceConnection[], exp: number, members: boolean) {
    for (let i = 0; i < entries.length; i += PUT_CHUNK) {
      const chunk = entries.slice(i, i + PUT_CHUNK);
      const p = redis.pipeline();
      p.zadd(all, ...chunk.flatMap((e) => [exp, member(e)]));
      if (members) for (const e of chunk) p.sadd(user(e.userId), member(e));
      await p.exec();
    }
  }
  return {
    put: (entries, exp) => put(entries, exp, true),
    async refresh(entries, exp) {
      const members = restore;
      restore = false;
      try {
        await put(entries, exp, members);
      } catch (err) {
        restore ||= members;
        throw err;
      }
    },
    async remove(e) {
      await redis.pipeline().zrem(all, member(e)).srem(user(e.userId), member(e)).exec();
    },
    async reap(now) {
      const expired = await redis.zrangebyscore(all, "-inf", now, "LIMIT", 0, 1000);
      const out: DeviceConnection[] = [];
      for (const m of expired) {
        // ZREM answers 1 to exactly one node: that one reports the device gone.
        if ((await redis.zrem(all, m)) === 1) {
          const e = parse(m);
          await redis.srem(user(e.userId), m);
          out.push(e);
        }
      }
      return out;
    },
    async online(userIds, now) {
      const p = redis.pipeline();
      for (const u of userIds) p.smembers(user(u));
      const sets = ((await p.exec()) ?? []).map((r) => (r?.[1] ?? []) as string[]);
      const members = sets.flat();
      if (members.length === 0) return new Set();
      // A member left behind by an interrupted reap has no expiry any more: it counts as offline.
      const scores = await redis.zmscore(all, ...members);
      const live = new Set(members.filter((_, i) => scores[i] !== null && Number(scores[i]) > now));
      return new Set(userIds.filter((_, i) => sets[i].some((m) => live.has(m))));
    },
    async onlineDevices(devices, now) {
      const users = [...new Set(devices.map((d) => d.userId))];
      const p = redis.pipeline();
      for (const u of users) p.smembers(user(u));
      const members = ((await p.exec()) ?? []).flatMap((r) => (r?.[1] ?? []) as string[]);
      const wanted = new Set(devices.map((d) => `${d.userId}:${d.deviceId}`));
      const candidates = members.filter((m) => {
        const e = parse(m);
        return wanted.has(`${e.userId}:${e.deviceId}`);
      });
      if (candidates.length === 0) return new Set();
      const scores = await redis.zmscore(all, ...candidates);
      const out = new Set<string>();
      candidates.forEach((m, i) => {
        if (scores[i] === null || Number(scores[i]) <= now) return;
        const e = parse(m);
        out.add(`${e.userId}:${e.deviceId}`);
      });
      return out;
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
