// How the SDK (and our tests) talk to the server: typed documents from codegen over HTTP POST and graphql-ws.
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print, type DocumentNode } from "graphql";
import { createClient, type Client as WsClient } from "graphql-ws";
import WebSocket from "ws";

export interface GraphQLErrorShape {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string; [key: string]: unknown };
}

export interface GraphQLResponse<T> {
  data?: T | null;
  errors?: GraphQLErrorShape[];
}

/** Thrown by request() when the server answered with errors; `code` is the first error's extensions.code. */
export class GraphQLRequestError extends Error {
  readonly code: string | undefined;
  constructor(readonly errors: GraphQLErrorShape[], readonly status?: number) {
    super(errors.map((e) => e.message).join("; "));
    this.code = errors[0]?.extensions?.code;
  }
  get extensions() {
    return this.errors[0]?.extensions ?? {};
  }
}

const printed = new WeakMap<DocumentNode, string>();
export function queryText(doc: DocumentNode): string {
  let text = printed.get(doc);
  if (!text) printed.set(doc, (text = print(doc)));
  return text;
}

/** The SHA-256 (hex) of a generated document's text: how the server's persisted-operation list names it. */
export function documentHash(doc: DocumentNode): string | null {
  const hash = (doc as { __meta__?: { hash?: string } }).__meta__?.hash;
  return hash ? hash.replace(/^sha256:/, "") : null;
}

/**
 * What a request carries for `doc`: its hash when it has one (the server runs the document it parsed and validated
 * at start, and a server with PERSISTED_OPERATIONS=allow-list runs nothing else), its text otherwise or when
 * `byHash` is false. graphql-ws requires a `query` string, so it is empty beside a hash.
 */
export function operationPayload(doc: DocumentNode, variables: unknown, byHash = true) {
  const hash = byHash ? documentHash(doc) : null;
  return hash
    ? { query: "", variables: (variables ?? {}) as Record<string, unknown>, extensions: { persistedQuery: { version: 1, sha256Hash: hash } } }
    : { query: queryText(doc), variables: (variables ?? {}) as Record<string, unknown> };
}

/** The server does not know this hash (an older server, or PERSISTED_OPERATIONS=off): the text is sent instead. */
export const isUnknownPersisted = (errors: readonly GraphQLErrorShape[] | undefined) =>
  errors?.[0]?.extensions?.code === "PERSISTED_QUERY_NOT_FOUND";

/** Another way to the server for some documents (socket-route.ts): null from run() sends the operation over HTTP. */
export interface OperationRoute {
  carries(doc: DocumentNode): boolean;
  run<T>(payload: ReturnType<typeof operationPayload>): Promise<GraphQLResponse<T> | null>;
}

export class HttpTransport {
  /** Documents this server did not know by hash: sent as text from then on. */
  readonly sentAsText = new WeakSet<DocumentNode>();
  /** While set, the documents it carries go over the client's graphql-ws connection when it is up. */
  route: OperationRoute | null = null;

  constructor(
    readonly url: string,
    public token: string | null = null,
  ) {}

  async execute<T, V>(doc: TypedDocumentNode<T, V>, variables?: V): Promise<GraphQLResponse<T> & { status: number }> {
    const byHash = !this.sentAsText.has(doc);
    const r = await this.send<T>(doc, operationPayload(doc, variables, byHash));
    // Refused before anything ran, so sending it again cannot run it twice.
    if (!byHash || !isUnknownPersisted(r.errors)) return r;
    this.sentAsText.add(doc);
    return this.send<T>(doc, operationPayload(doc, variables, false));
  }

  private async send<T>(doc: DocumentNode, payload: ReturnType<typeof operationPayload>): Promise<GraphQLResponse<T> & { status: number }> {
    const overSocket = this.route?.carries(doc) ? await this.route.run<T>(payload) : null;
    return overSocket ? { ...overSocket, status: 200 } : this.post<T>(payload);
  }

  private async post<T>(payload: ReturnType<typeof operationPayload>): Promise<GraphQLResponse<T> & { status: number }> {
    const res = await fetch(this.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/graphql-response+json, application/json",
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
      },
      body: JSON.stringify(payload.query ? payload : { variables: payload.variables, extensions: payload.extensions }),
    });
    const body = (await res.json()) as GraphQLResponse<T>;
    return { ...body, status: res.status };
  }

  async request<T, V>(doc: TypedDocumentNode<T, V>, variables?: V): Promise<T> {
    const r = await this.execute(doc, variables);
    if (r.errors?.length) throw new GraphQLRequestError(r.errors, r.status);
    return r.data as T;
  }
}

/** The WebSocket URL for an HTTP GraphQL endpoint. */
export function wsUrl(httpUrl: string): string {
  return httpUrl.replace(/^http/, "ws");
}

export function openWs(
  httpUrl: string,
  token: string,
  options: {
    retryAttempts?: number;
    onClosed?: (code: number, reason: string) => void;
    lazy?: boolean;
    /** Whether to reconnect after this close; default: whenever retryAttempts > 0. */
    shouldRetry?: (code: number) => boolean;
  } = {},
): WsClient {
  return createClient({
    url: wsUrl(httpUrl),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    lazy: options.lazy ?? true,
    // A non-lazy client reports a refused or closed connection through onClosed; don't also print it.
    onNonLazyError: () => {},
    retryAttempts: options.retryAttempts ?? 0,
    shouldRetry: (event) =>
      (options.retryAttempts ?? 0) > 0 && (options.shouldRetry?.((event as { code?: number })?.code ?? 0) ?? true),
    on: {
      closed: (event) => {
        const e = event as { code?: number; reason?: string };
        options.onClosed?.(e.code ?? 0, e.reason ?? "");
      },
    },
  });
}

/** Runs one operation over an open graphql-ws client and resolves with its single result. */
export function wsRequest<T, V>(client: WsClient, doc: TypedDocumentNode<T, V>, variables?: V, byHash = true): Promise<T> {
  return new Promise((resolve, reject) => {
    let result: GraphQLResponse<T> | undefined;
    client.subscribe<T>(
      operationPayload(doc, variables, byHash),
      {
        next: (value) => (result = value as GraphQLResponse<T>),
        error: (err) =>
          reject(Array.isArray(err) ? new GraphQLRequestError(err as GraphQLErrorShape[]) : (err as Error)),
        complete: () => {
          if (result?.errors?.length) reject(new GraphQLRequestError(result.errors));
          else resolve(result?.data as T);
        },
      },
    );
  });
}
