// Conversations and the local history: a conversation's server id, pages of stored messages, full-text search.
// Everything here reads this device's store; only a conversation id not learnt from an envelope asks the server.
import { ConversationsDocument, type ConversationsQuery } from "./generated/graphql.ts";
import { VignetteError, wrap } from "./errors.ts";
import type { MessageStore, StoredMessage } from "./message-store.ts";
import type { HttpTransport } from "./transport.ts";
import { UUID } from "./users.ts";

/** Bounds of history reads: a page, and a search query. */
export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 1000;
export const MAX_SEARCH_LENGTH = 1000;

export interface HistoryDeps {
  http: HttpTransport;
  store: MessageStore;
  resolveUser(who: string): Promise<string>;
}

export class History {
  constructor(private readonly d: HistoryDeps) {}

  async conversationId(who: string): Promise<string> {
    const peer = await this.d.resolveUser(who);
    const known = await this.d.store.conversationWith(peer);
    if (known) return known;
    // Not learnt from an envelope yet (e.g. only sent so far): ask the server's conversation list.
    let after: string | null = null;
    for (;;) {
      const { conversations }: ConversationsQuery = await wrap(() =>
        this.d.http.request(ConversationsDocument, { first: 100, after }),
      );
      const hit = conversations.edges.find((e) => e.node.peerUserId === peer);
      if (hit) {
        await this.d.store.learnConversation(peer, hit.node.id);
        return hit.node.id;
      }
      if (!conversations.pageInfo.hasNextPage) break;
      after = conversations.pageInfo.endCursor ?? null;
    }
    throw new VignetteError(`no conversation with ${who} yet`, "NOT_FOUND");
  }

  async messages(who?: string, opts: { before?: string | Date | number; limit?: number } = {}): Promise<StoredMessage[]> {
    const conversation = who === undefined ? undefined : await this.conversationKeyOf(who);
    const b = opts.before;
    const before = b === undefined ? undefined : typeof b === "string" ? { messageId: b } : { at: typeof b === "number" ? b : b.getTime() };
    return this.d.store.page({ conversation, before, limit: pageLimit(opts.limit) });
  }

  async search(text: string, opts: { in?: string; limit?: number } = {}): Promise<StoredMessage[]> {
    if (text.length > MAX_SEARCH_LENGTH) throw new VignetteError(`a search is at most ${MAX_SEARCH_LENGTH} characters`, "BAD_USER_INPUT");
    const conversation = opts.in === undefined ? undefined : await this.conversationKeyOf(opts.in);
    return this.d.store.search({ text, conversation, limit: pageLimit(opts.limit) });
  }

  /** A username, user id or group id to the key its conversation is stored under. */
  private async conversationKeyOf(who: string): Promise<string> {
    return UUID.test(who) ? who.toLowerCase() : this.d.resolveUser(who);
  }
}

const pageLimit = (n: number | undefined) => Math.max(1, Math.min(MAX_PAGE, Math.floor(n ?? DEFAULT_PAGE)));
