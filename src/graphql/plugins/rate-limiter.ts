// Fixed-window counters for abuse limits. With Redis every node counts in the same keys (one Lua call per checked
// operation, INCR + PEXPIRE atomically, so a key can never be left without an expiry); without Redis each process
// counts in memory. Refused calls count too, so hammering a limit keeps a caller refused.
//
// Redis trouble never refuses a call: limits protect the service, and failing closed would turn a Redis restart into
// an outage of sends that PostgreSQL could have stored. The check then fails open and the refusal is logged.
import type { Redis } from "ioredis";
import { connectRedis } from "../../live/redis.ts";
import type { RateLimit, RateLimitFamily, RateLimits } from "../../config.ts";
import { AppError } from "../../errors.ts";
import type { Logger } from "../../logger.ts";

/** One counter to charge: a family's limit for one subject (a device, an IP, a requester-target pair). */
export interface Charge {
  name: string;
  subject: string;
  limit: RateLimit;
}

export interface RateLimiter {
  kind: "memory" | "redis";
  /** Charges one point on each counter; throws RATE_LIMITED (extensions.retryAfter in seconds) if any is over. */
  consume(charges: Charge[]): Promise<void>;
  /** Resolves once checks can be made (Redis connected), or after a few seconds: checks then fail open. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** What one call of a family charges: its device and IP counters, plus any extra subjects (claim targets). */
export function chargesFor(
  limits: RateLimits,
  family: RateLimitFamily,
  caller: { device: string | null; ip: string },
  extra: Charge[] = [],
): Charge[] {
  const { device, ip } = limits[family];
  const out: Charge[] = [];
  if (device && caller.device) out.push({ name: family, subject: `d:${caller.device}`, limit: device });
  if (ip) out.push({ name: family, subject: `ip:${caller.ip}`, limit: ip });
  return out.concat(extra);
}

export function rateLimited(name: string, retryAfterSeconds: number): AppError {
  const retryAfter = Math.max(1, Math.ceil(retryAfterSeconds));
  return new AppError("RATE_LIMITED", `too many ${name} requests; retry after ${retryAfter} s`, { retryAfter });
}

export function createMemoryRateLimiter(now: () => number = Date.now): RateLimiter {
  const windows = new Map<string, { count: number; resetAt: number }>();
  // Expired windows would otherwise pile up, one per subject ever seen.
  const sweep = setInterval(() => {
    const t = now();
    for (const [k, w] of windows) if (w.resetAt <= t) windows.delete(k);
  }, 30_000);
  sweep.unref();
  return {
    kind: "memory",
    ready: async () => {},
    async consume(charges) {
      const t = now();
      let refused: { name: string; wait: number } | null = null;
      for (const c of charges) {
        const k = `${c.name}:${c.subject}:${c.limit.windowSeconds}`;
        let w = windows.get(k);
        if (!w || w.resetAt <= t) windows.set(k, (w = { count: 0, resetAt: t + c.limit.windowSeconds * 1000 }));
        w.count += 1;
        if (w.count > c.limit.points) {
          const wait = (w.resetAt - t) / 1000;
          if (!refused || wait > refused.wait) refused = { name: c.name, wait };
        }
      }
      if (refused) throw rateLimited(refused.name, refused.wait);
    },
    async close() {
      clearInterval(sweep);
    },
  };
}

// KEYS: counters; ARGV: window in ms for each key. Returns count and remaining ms per key.
const CONSUME_LUA = `
local out = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, ARGV[i]) end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then redis.call('PEXPIRE', key, ARGV[i]); ttl = tonumber(ARGV[i]) end
  out[#out + 1] = n
  out[#out + 1] = ttl
end
return out`;

export function createRedisRateLimiter(url: string, prefix: string, logger: Logger): RateLimiter {
  // No offline queue: while Redis is away a check fails at once (and the call is let through) instead of waiting.
  const redis = connectRedis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  redis.on("error", (err) => logger.warn({ err: err.message }, "rate-limit redis error"));
  redis.defineCommand("vgConsume", { lua: CONSUME_LUA });
  type WithConsume = Redis & { vgConsume(n: number, ...args: (string | number)[]): Promise<number[]> };
  let lastWarning = 0;
  // Without an offline queue, checks made before the first connection fail open: a node starts counting only once
  // its connection is up, so the composition root waits for it (bounded) before serving.
  const connected = new Promise<void>((resolve) => {
    if (redis.status === "ready") return resolve();
    redis.once("ready", () => resolve());
    setTimeout(resolve, 5_000).unref();
  });
  return {
    kind: "redis",
    ready: () => connected,
    async consume(charges) {
      if (charges.length === 0) return;
      const keys = charges.map((c) => `${prefix}rl:${c.name}:${c.limit.windowSeconds}:${c.subject}`);
      const windows = charges.map((c) => c.limit.windowSeconds * 1000);
      let reply: number[];
      try {
        reply = await (redis as WithConsume).vgConsume(keys.length, ...keys, ...windows);
      } catch (err) {
        if (Date.now() - lastWarning > 5_000) {
          lastWarning = Date.now();
          logger.warn({ err: (err as Error).message }, "rate limits unchecked while redis is unavailable");
        }
        return;
      }
      let refused: { name: string; wait: number } | null = null;
      charges.forEach((c, i) => {
        const [count, ttl] = [reply[2 * i], reply[2 * i + 1]];
        if (count > c.limit.points && (!refused || ttl / 1000 > refused.wait)) refused = { name: c.name, wait: ttl / 1000 };
      });
      if (refused) throw rateLimited((refused as { name: string }).name, (refused as { wait: number }).wait);
    },
    async close() {
      redis.disconnect();
    },
  };
}
