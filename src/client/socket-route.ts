// The hot operations (sends, acknowledgements, read marks, typing) over the client's open graphql-ws connection
// instead of one HTTP request each: the socket is already authenticated and held for the inbox, a request costs a
// frame instead of a fetch, and the server answers known documents on its socket path without Yoga's HTTP
// pipeline. Only operations that are safe to run twice are routed here: one whose connection closes before its
// answer is not sent again over the socket (graphql-ws would, after it reconnects) but handed back, and the
// transport sends it over HTTP, where a send is idempotent by its clientMessageId and an acknowledgement by its ids.
import type { DocumentNode } from "graphql";
import type { Client as WsClient } from "graphql-ws";
import type { GraphQLErrorShape, GraphQLResponse, OperationRoute, operationPayload } from "./transport.ts";

// Kept well under the server's operations per connection (MAX_OPERATIONS_PER_CONNECTION, 100 by default), which also
// counts the inbox, typing and presence subscriptions; what is over it goes over HTTP.
const MAX_IN_FLIGHT = 64;

export class SocketRoute implements OperationRoute {
  private open = false;
  /** One per operation in flight: hands it back when the connection closes. */
  private readonly inFlight = new Set<() => void>();
  private readonly unlisten: (() => void)[];

  constructor(
    private readonly ws: WsClient,
    private readonly docs: ReadonlySet<DocumentNode>,
  ) {
    this.unlisten = [
      ws.on("connected", () => (this.open = true)),
      ws.on("closed", () => {
        this.open = false;
        for (const handBack of [...this.inFlight]) handBack();
      }),
    ];
  }

  /** Whether `doc` goes over the socket now: one of the routed documents, the socket connected and not too busy. */
  carries(doc: DocumentNode): boolean {
    return this.open && this.inFlight.size < MAX_IN_FLIGHT && this.docs.has(doc);
  }

  /** The operation's result, or null when the connection closed before it came (the caller sends it over HTTP). */
  run<T>(payload: ReturnType<typeof operationPayload>): Promise<GraphQLResponse<T> | null> {
    return new Promise((resolve) => {
      let result: GraphQLResponse<T> | null = null;
      let dispose = () => {};
      const settle = (r: GraphQLResponse<T> | null) => {
        this.inFlight.delete(handBack);
        resolve(r);
      };
      // Disposed before graphql-ws reconnects, so it does not subscribe the operation again on the new socket.
      const handBack = () => {
        dispose();
        settle(null);
      };
      this.inFlight.add(handBack);
      dispose = this.ws.subscribe<T>(payload, {
        next: (value) => (result = value as GraphQLResponse<T>),
        // Errors the server sends before running anything (an unknown hash, a limit) arrive as a list; anything else
        // is the connection's end, and the operation goes over HTTP.
        error: (err) => settle(Array.isArray(err) ? { errors: err as GraphQLErrorShape[] } : null),
        complete: () => settle(result),
      });
    });
  }

  detach(): void {
    this.open = false;
    for (const off of this.unlisten) off();
  }
}
