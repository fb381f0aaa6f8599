// The client's one graphql-ws connection and the subscriptions over it: the inbox, and the typing and presence
// watches the app asks for. A subscription that dies is reported as an "error" event, never thrown into the app.
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import type { DocumentNode } from "graphql";
import type { Client as WsClient } from "graphql-ws";
import type { AccountInfo } from "./account-store.ts";
import { VignetteError } from "./errors.ts";
import type { ClientEvents } from "./events.ts";
import {
  AckEnvelopesDocument,
  AckGroupEventsDocument,
  MarkGroupReadDocument,
  MarkReadDocument,
  PresenceUpdatesDocument,
  SendMessageDocument,
  TypingDocument,
} from "./generated/graphql.ts";
import { SocketRoute } from "./socket-route.ts";
import { isUnknownPersisted, openWs, operationPayload, type GraphQLErrorShape, type HttpTransport } from "./transport.ts";

export interface SubscriptionsDeps {
  account: AccountInfo;
  /** Knows which documents this server takes as text only. */
  http: HttpTransport;
  emit<K extends keyof ClientEvents>(name: K, value: ClientEvents[K]): Promise<void>;
  fail(err: unknown): void;
  resolveUser(who: string): Promise<string>;
  conversationId(who: string): Promise<string>;
}

// What goes over the connection while it is up (socket-route.ts): the operations of every message's life, each safe to
// run twice. A group send is not among them: it has no idempotency key, and a copy sent again would reach every member.
// Nor is setTyping: typing is live only, and watchTyping() returns before the server has registered its subscription,
// so a typing sent over the faster socket right after a peer's watchTyping() could reach the server first and be lost
// (seen in CI); until watchTyping() waits for the server, it keeps HTTP's timing.
const OVER_SOCKET = new Set<DocumentNode>([SendMessageDocument, AckEnvelopesDocument, AckGroupEventsDocument, MarkReadDocument, MarkGroupReadDocument]);

export class Subscriptions {
  private ws: WsClient | null = null;
  private route: SocketRoute | null = null;
  private stops: (() => void)[] = [];
  private closed = false;
  constructor(private readonly d: SubscriptionsDeps) {}

  get connected(): boolean {
    return this.ws !== null;
  }

  connect(): void {
    this.ws = openWs(this.d.account.server, this.d.account.token, {
      retryAttempts: Number.MAX_SAFE_INTEGER,
      // 4401/4403: the token is no longer valid (this device was deactivated); reconnecting cannot help.
      shouldRetry: (code) => code !== 4401 && code !== 4403,
      onClosed: (code) => {
        if (code === 4401 || code === 4403) this.d.fail(new VignetteError("this device was deactivated", "DEVICE_DEACTIVATED"));
      },
    });
    this.d.http.route = this.route = new SocketRoute(this.ws, OVER_SOCKET);
  }

  /** Subscribes until close(). */
  keep<T, V extends Record<string, unknown>>(doc: TypedDocumentNode<T, V>, variables: V, onData: (data: T) => Promise<void> | void): void {
    this.stops.push(this.subscribe(doc, variables, onData));
  }

  async watchTyping(who: string): Promise<() => void> {
    const conversationId = await this.d.conversationId(who);
    return this.subscribe(TypingDocument, { conversationId }, ({ typing }) =>
      this.d.emit("typing", {
        conversationId: typing.conversationId,
        userId: typing.userId,
        deviceId: typing.deviceId ?? null,
        isTyping: typing.isTyping,
      }),
    );
  }

  async watchPresence(who: string[]): Promise<() => void> {
    const userIds = await Promise.all(who.map((w) => this.d.resolveUser(w)));
    return this.subscribe(PresenceUpdatesDocument, { userIds }, ({ presence }) =>
      this.d.emit("presence", { userId: presence.userId, online: presence.online, lastSeenAt: presence.lastSeen ?? null }),
    );
  }

  private subscribe<T, V extends Record<string, unknown>>(
    doc: TypedDocumentNode<T, V>,
    variables: V,
    onData: (data: T) => Promise<void> | void,
  ): () => void {
    if (!this.ws) throw new VignetteError("not started: call start() first", "NOT_STARTED");
    const { http, fail } = this.d;
    // By hash, as over HTTP; a server that does not know the hash refuses before subscribing, so the text follows.
    const byHash = !http.sentAsText.has(doc);
    let stop = this.ws.subscribe<T>(operationPayload(doc, variables, byHash), {
      next: (r) => {
        if (r.errors?.length) return fail(new VignetteError(r.errors.map((e) => e.message).join("; ")));
        if (r.data) Promise.resolve(onData(r.data as T)).catch((e) => fail(e));
      },
      error: (err) => {
        if (this.closed) return;
        if (byHash && Array.isArray(err) && isUnknownPersisted(err as GraphQLErrorShape[])) {
          http.sentAsText.add(doc);
          stop = this.subscribe(doc, variables, onData);
          return;
        }
        const msg = Array.isArray(err) ? (err as GraphQLErrorShape[]).map((e) => e.message).join("; ") : String((err as Error)?.message ?? err);
        fail(new VignetteError(`subscription ended: ${msg}`));
      },
      complete: () => {},
    });
    return () => stop();
  }

  /** Ends every kept subscription; the connection itself goes with dispose(), once the inbox has drained. */
  stop(): void {
    this.closed = true;
    for (const stop of this.stops.splice(0)) stop();
  }

  async dispose(): Promise<void> {
    this.route?.detach();
    if (this.d.http.route === this.route) this.d.http.route = null;
    this.route = null;
    await this.ws?.dispose();
    this.ws = null;
  }
}
