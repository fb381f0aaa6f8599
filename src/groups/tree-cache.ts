// The latest parsed ratchet tree of each group a node has seen a commit for. Parsing a 1,500-leaf tree costs
// milliseconds, so commits reuse it; but one entry per group ever committed to would grow without end, so the cache
// is an LRU bounded both in entries and in the bytes of the GroupInfo each was parsed from (a proxy for its size).
import { LRUCache } from "lru-cache";
import type { ParsedGroupInfo } from "./mls-framing.ts";

export interface CachedTree {
  epoch: number;
  parsed: ParsedGroupInfo;
  /** Length of the GroupInfo it was parsed from. */
  bytes: number;
}

export const TREE_CACHE_LIMITS = { entries: 1_000, bytes: 64 * 1024 * 1024 };

export function createTreeCache(limits: { entries: number; bytes: number } = TREE_CACHE_LIMITS): LRUCache<string, CachedTree> {
  return new LRUCache<string, CachedTree>({
    max: limits.entries,
    maxSize: limits.bytes,
    // A tree larger than the whole budget is simply not kept (lru-cache refuses it).
    sizeCalculation: (t) => Math.max(1, t.bytes),
  });
}
