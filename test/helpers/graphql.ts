// Hand-written operations for tests that send what no generated document would (aliases, wrong types, junk).
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { parse } from "graphql";
import { GraphQLRequestError, type GraphQLErrorShape } from "../../src/client/transport.ts";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const gql = (text: string) => parse(text) as TypedDocumentNode<any, any>;

/** Posts raw text (not necessarily valid GraphQL) and returns status and body. */
export async function postRaw(
  url: string,
  body: unknown,
  token?: string | null,
): Promise<{ status: number; errors?: GraphQLErrorShape[]; data?: unknown }> {
  const send = () =>
    fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/graphql-response+json, application/json",
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  let res: Response;
  try {
    res = await send();
  } catch {
    // The HTTP/1.1 keep-alive race (a request on a socket the server is just closing as idle) never reached the
    // server; one retry on a fresh socket settles it. A server that is really gone fails again.
    res = await send();
  }
  const text = await res.text();
  let parsed: { errors?: GraphQLErrorShape[]; data?: unknown } = {};
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = { errors: [{ message: text.slice(0, 200), extensions: { code: `HTTP_${res.status}` } }] };
  }
  return { status: res.status, ...parsed };
}

/** The error a promise rejected with, as a GraphQLRequestError (fails the test if it resolved). */
export async function refusal(p: Promise<unknown>): Promise<GraphQLRequestError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof GraphQLRequestError) return err;
    throw err;
  }
  throw new Error("expected the operation to be refused, but it succeeded");
}
