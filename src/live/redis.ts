// The one place Redis connections are made (bus publisher and subscriber, presence, rate limits): the same retry
// settings everywhere, each client's differences stated where it is made.
import { Redis, type RedisOptions } from "ioredis";

/**
 * A connection that retries its commands twice and reconnects with a backoff of up to 2 s. Commands fail rather
 * than wait for long: Redis is for live state, and PostgreSQL holds what must not be lost.
 */
export function connectRedis(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, { maxRetriesPerRequest: 2, retryStrategy: (n: number) => Math.min(n * 100, 2000), ...options });
}
