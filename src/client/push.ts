// client.push: this device's push address (a browser PushSubscription, or a token for one of the server's gateways)
// and the server's VAPID key to subscribe with. Pushes only say "wake up": the app then connects and reads its queue.
import { PushConfigDocument, RegisterPushDocument, UnregisterPushDocument } from "./generated/graphql.ts";
import { wrap } from "./errors.ts";
import type { HttpTransport } from "./transport.ts";

/** A browser PushSubscription, or what its toJSON() gives. */
export interface WebPushSubscriptionLike {
  endpoint: string;
  keys?: { p256dh?: string; auth?: string } | Record<string, string>;
  toJSON?(): { endpoint?: string; keys?: Record<string, string> };
}

/** A device token for a gateway the server is configured with (pushConfig.gateways), e.g. an APNs/FCM relay. */
export interface GatewaySubscription {
  gateway: string;
  token: string;
}

export class PushClient {
  constructor(private readonly http: HttpTransport) {}

  /** The applicationServerKey for PushManager.subscribe (null when the server has no Web Push) and the gateways. */
  config(): Promise<{ vapidPublicKey: string | null; gateways: string[] }> {
    return wrap(async () => (await this.http.request(PushConfigDocument)).pushConfig);
  }

  /** Sets this device's push address; a new one replaces the old. */
  async register(subscription: WebPushSubscriptionLike | GatewaySubscription): Promise<void> {
    const input =
      "gateway" in subscription
        ? { kind: "GATEWAY" as const, gateway: subscription.gateway, token: subscription.token }
        : (() => {
            const json = subscription.toJSON?.() ?? subscription;
            const keys = (json.keys ?? {}) as Record<string, string>;
            return { kind: "WEB_PUSH" as const, endpoint: json.endpoint ?? subscription.endpoint, p256dh: keys.p256dh, auth: keys.auth };
          })();
    await wrap(() => this.http.request(RegisterPushDocument, { input }));
  }

  /** Stops wake-ups for this device; false when it had no push address. */
  unregister(): Promise<boolean> {
    return wrap(async () => (await this.http.request(UnregisterPushDocument)).unregisterPush);
  }
}
