// The one Pothos SchemaBuilder. Each file beside this registers one domain's types and fields on it.
import SchemaBuilder from "@pothos/core";
import RelayPlugin from "@pothos/plugin-relay";
import ScopeAuthPlugin from "@pothos/plugin-scope-auth";
import SimpleObjectsPlugin from "@pothos/plugin-simple-objects";
import ValidationPlugin from "@pothos/plugin-validation";
import { GraphQLError } from "graphql";
import type { Actor } from "../deps.ts";
import type { DevicesService } from "../accounts/service.ts";
import type { KeyPackagesService } from "../groups/key-packages.ts";
import type { GroupsService } from "../groups/service.ts";
import type { InboxService } from "../inbox/service.ts";
import type { KeysService } from "../keys/service.ts";
import type { MessagesService } from "../messages/service.ts";
import type { RealtimeService } from "../realtime/service.ts";
import type { PushService } from "../push/service.ts";
import type { AttachmentsService } from "../attachments/service.ts";
import type { ConsentService } from "../consent/service.ts";
import type { CallsService } from "../calls/service.ts";

/** The domains' services as resolvers reach them (built and wired in src/app.ts). */
export interface Services {
  keys: KeysService;
  devices: DevicesService;
  inbox: InboxService;
  messages: MessagesService;
  realtime: RealtimeService;
  groups: GroupsService;
  keyPackages: KeyPackagesService;
  push: PushService;
  attachments: AttachmentsService;
  calls: CallsService;
  consent: ConsentService;
}

export interface Context {
  services: Services;
  /** The device whose token authenticated this operation; null when none (or an invalid one) was given. */
  actor: Actor | null;
  /** The caller's address (see clientAddress in src/http/auth.ts), for per-IP limits. */
  clientIp: string;
  /** Over WebSocket: closes the caller's connection as a slow consumer (a subscription fell too far behind). */
  dropSlowConsumer?: () => void;
}

export interface AuthedContext extends Context {
  actor: Actor;
}

export const builder = new SchemaBuilder<{
  Context: Context;
  AuthScopes: { device: boolean };
  AuthContexts: { device: AuthedContext };
  DefaultFieldNullability: false;
  Scalars: {
    Bytes: { Input: Uint8Array<ArrayBuffer>; Output: Uint8Array | string };
    DateTime: { Input: Date; Output: Date | string };
  };
}>({
  defaultFieldNullability: false,
  plugins: [ScopeAuthPlugin, SimpleObjectsPlugin, ValidationPlugin, RelayPlugin],
  scopeAuth: {
    authScopes: (ctx) => ({ device: ctx.actor !== null }),
    unauthorizedError: (_parent, ctx) =>
      ctx.actor
        ? new GraphQLError("not allowed", { extensions: { code: "FORBIDDEN" } })
        : new GraphQLError("a valid device token is required", { extensions: { code: "UNAUTHENTICATED" } }),
  },
  validation: {
    validationError: (failure) =>
      new GraphQLError(
        failure.issues.map((i) => `${(i.path ?? []).map((p) => (typeof p === "object" ? p.key : p)).join(".")}: ${i.message}`).join("; "),
        { extensions: { code: "BAD_USER_INPUT" } },
      ),
  },
  relay: {
    clientMutationId: "omit",
    cursorType: "String",
    pageInfoTypeOptions: { description: "Where a page of a connection stands in the whole list." },
    hasNextPageFieldOptions: { description: "More items follow the last one of this page" },
    hasPreviousPageFieldOptions: { description: "Items come before the first one of this page" },
    startCursorFieldOptions: { description: "The first item's cursor (pass as `before`)" },
    endCursorFieldOptions: { description: "The last item's cursor (pass as `after` for the next page)" },
    pageInfoFieldOptions: { description: "Where this page stands" },
    edgesFieldOptions: { description: "The items of this page, each with its cursor" },
    cursorFieldOptions: { description: "An opaque position: pass it as `after` or `before`" },
    nodeFieldOptions: { description: "The item" },
    firstArgOptions: { description: "At most this many items after `after`" },
    lastArgOptions: { description: "At most this many items before `before`" },
    afterArgOptions: { description: "Start after this cursor" },
    beforeArgOptions: { description: "End before this cursor" },
    defaultConnectionTypeOptions: { description: "A page of items (Relay cursor connection)." },
    defaultEdgeTypeOptions: { description: "One item of a page and its cursor." },
  },
});

builder.queryType({ description: "Reads. Every field but registration needs a device token (Authorization: Bearer)." });
builder.mutationType({ description: "Writes. The acting user and device always come from the token, never from an argument." });
builder.subscriptionType({
  description: "Live streams over graphql-ws (connectionParams.authorization) or server-sent events (Authorization header).",
});
