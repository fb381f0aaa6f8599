// GraphiQL served from the server's own assets (no CDN); its subscriptions use GraphQL over SSE on the same endpoint.
// Why not graphql-ws: a browser cannot set headers on a WebSocket and GraphiQL sends its headers pane only with HTTP
// requests (its WebSocket connection_init goes out empty), so the pasted token reaches the server only over HTTP.
import { renderGraphiQL } from "@graphql-yoga/render-graphiql";
import type { GraphiQLOptions } from "graphql-yoga";

/** The pasted token travels as the `Authorization` header of every request, subscriptions included. */
const DEFAULT_HEADERS = JSON.stringify({ authorization: "Bearer <paste a device token here>" }, null, 2);

const DEFAULT_QUERY = `# Paste a device token into the Headers tab below (it goes with every request, subscriptions too),
# then run one of these. Register a device with the SDK or CLI to get a token: see README.md.
query Me {
  me { userId deviceId name }
}

subscription Inbox {
  inbox {
    __typename
    ... on EnvelopeEvent { envelope { id senderUserId type serverTimestamp } }
  }
}
`;

export function graphiqlOptions(): GraphiQLOptions {
  return {
    title: "Vignette Messaging",
    subscriptionsProtocol: "SSE",
    headers: DEFAULT_HEADERS,
    defaultQuery: DEFAULT_QUERY,
  };
}

export { renderGraphiQL };
