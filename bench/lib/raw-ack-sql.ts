// The acknowledgement statement the batched ack path is to run (moves into the server with it).
export const ACK_ITEMS = `
WITH k AS (
  SELECT DISTINCT u, d, id FROM unnest($4::uuid[], $5::int[], $6::bigint[]) AS k(u, d, id)
), lk AS (
  SELECT i.id FROM inbox_items i
  WHERE i.id = ANY(ARRAY(SELECT id FROM k)) AND (i.user_id, i.device_id, i.id) IN (SELECT u, d, id FROM k)
  ORDER BY i.id FOR UPDATE OF i
), del AS (
  DELETE FROM inbox_items i USING lk WHERE i.id = lk.id
  RETURNING i.id, i.user_id, i.device_id, i.kind, i.message_id
), ml AS (
  SELECT m.id FROM messages m
  JOIN (SELECT DISTINCT message_id, user_id FROM del WHERE kind = 'envelope') s
    ON m.id = s.message_id AND m.recipient_user_id = s.user_id
  WHERE m.delivered_at IS NULL
  ORDER BY m.id FOR UPDATE OF m
), upd AS (
  UPDATE messages m SET delivered_at = $1::timestamptz FROM ml WHERE m.id = ml.id
  RETURNING m.id, m.seq, m.conversation_id, m.sender_user_id, m.recipient_user_id, m.expires_at
), rcpt AS (
  INSERT INTO inbox_items (user_id, device_id, kind, message_id, conversation_id, payload, created_at, expires_at)
  SELECT d.user_id, d.device_id, 'receipt', (array_agg(u.id ORDER BY u.seq))[1], (array_agg(u.conversation_id))[1],
         jsonb_build_object('userId', u.recipient_user_id::text, 'kind', 'DELIVERED', 'at', $3::text,
                            'messageIds', jsonb_agg(u.id::text ORDER BY u.seq)),
         $1::timestamptz, max(COALESCE(u.expires_at, $2::timestamptz))
  FROM upd u JOIN devices d ON d.user_id = u.sender_user_id AND d.active
  GROUP BY d.user_id, d.device_id, u.recipient_user_id
  RETURNING id, user_id, device_id, message_id, conversation_id, payload, created_at, expires_at
)
SELECT 'd' AS k, id::text AS id, user_id::text AS u, device_id AS d, NULL::text AS m, NULL::text AS c,
       NULL::jsonb AS p, NULL::float8 AS at, NULL::float8 AS e
FROM del
UNION ALL
SELECT 'r', id::text, user_id::text, device_id, message_id::text, conversation_id::text, payload,
       extract(epoch FROM created_at)::float8 * 1000, extract(epoch FROM expires_at)::float8 * 1000
FROM rcpt`;
