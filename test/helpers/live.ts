// Collects what a graphql-ws subscription delivers, with bounded waits (no test can hang on a missing event).
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import type { Client } from "graphql-ws";
import { GraphQLRequestError, queryText, type GraphQLErrorShape } from "../../src/client/transport.ts";

export interface Collector<T> {
  items: T[];
  errors: unknown[];
  completed: boolean;
  /** Resolves when pred holds for the collected items; rejects after timeoutMs. */
  until(pred: (items: T[]) => boolean, timeoutMs?: number, what?: string): Promise<T[]>;
  stop(): void;
}

/** Subscribes and collects; `onItem` sees each item as it arrives. */
export function collect<T, V>(
  client: Client,
  doc: TypedDocumentNode<T, V>,
  variables?: V,
  onItem?: (item: T) => void,
): Collector<T> {
  const waiters = new Set<() => void>();
  const wake = () => waiters.forEach((w) => w());
  const c: Collector<T> = {
    items: [],
    errors: [],
    completed: false,
    until(pred, timeoutMs = 15_000, what = "events") {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pred(c.items)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(c.items);
          } else if (c.errors.length || c.completed) {
            waiters.delete(check);
            clearTimeout(timer);
            reject(c.errors[0] ?? new Error(`subscription ended before ${what} arrived`));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${what}; have ${c.items.length}: ${JSON.stringify(c.items).slice(0, 800)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    stop: () => {},
  };
  c.stop = client.subscribe<T>(
    { query: queryText(doc), variables: (variables ?? {}) as Record<string, unknown> },
    {
      next: (value) => {
        if (value.errors?.length) c.errors.push(new GraphQLRequestError(value.errors as GraphQLErrorShape[]));
        else {
          c.items.push(value.data as T);
          onItem?.(value.data as T);
        }
        wake();
      },
      error: (err) => {
        c.errors.push(Array.isArray(err) ? new GraphQLRequestError(err as GraphQLErrorShape[]) : err);
        wake();
      },
      complete: () => {
        c.completed = true;
        wake();
      },
    },
  );
  return c;
}

/**
 * One subscription's first answer on an open client: the code of its first error, "data" for an event, "completed"
 * when it ended without either, "timeout" when nothing came in `ms`.
 */
export function subscribeOnce(client: Client, query: string, variables: Record<string, unknown>, ms = 10_000): Promise<string> {
  return new Promise((resolve) => {
    let stop = () => {};
    const done = (answer: string) => {
      clearTimeout(timer);
      stop();
      resolve(answer);
    };
    const timer = setTimeout(() => done("timeout"), ms);
    stop = client.subscribe(
      { query, variables },
      {
        next: (v) => done((v.errors?.[0] as { extensions?: { code?: string } } | undefined)?.extensions?.code ?? "data"),
        error: (err) => done(Array.isArray(err) ? ((err[0] as { extensions?: { code?: string } }).extensions?.code ?? "?") : `closed ${(err as { code?: number }).code}`),
        complete: () => done("completed"),
      },
    );
  });
}
