// The account store on SQLite (better-sqlite3): one database file in the account directory, WAL with
// synchronous=FULL so a committed batch survives a crash or power loss before the SDK acknowledges what it holds.
// Every WriteBatch is one transaction. Messages are indexed by conversation and server time and their current text
// is in an FTS5 index; reactions, edits, votes and RSVPs sit in tables of their own and are folded in on read.
import Database from "better-sqlite3";
import { closeSync, chmodSync, openSync } from "node:fs";
import type { RsvpAnswer } from "../content.ts";
import { fold, ftsQuery, searchText, type FoldRows } from "./fold.ts";
import { conversationKey, type AccountInfo, type ApplyOptions, type AccountStore, type MessageRecord, type PageQuery, type SearchQuery, type StoredMessage, type WriteBatch } from "./types.ts";

const SCHEMA_VERSION = 1;
const SCHEMA = `
CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE messages (
  seq INTEGER PRIMARY KEY,
  message_id TEXT NOT NULL UNIQUE,
  conv TEXT NOT NULL,
  at INTEGER NOT NULL,
  record TEXT NOT NULL,
  expires_at TEXT,
  read_at TEXT,
  delivered_at TEXT
);
CREATE INDEX messages_by_conv ON messages (conv, at, seq);
CREATE INDEX messages_by_time ON messages (at, seq);
CREATE INDEX messages_expiring ON messages (expires_at) WHERE expires_at IS NOT NULL;
CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2');
CREATE TABLE reactions (message_id TEXT NOT NULL, user_id TEXT NOT NULL, emoji TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (message_id, user_id)) WITHOUT ROWID;
CREATE TABLE edits (message_id TEXT NOT NULL, edit_id TEXT NOT NULL, text TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (message_id, edit_id)) WITHOUT ROWID;
CREATE TABLE votes (poll_id TEXT NOT NULL, user_id TEXT NOT NULL, choices TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (poll_id, user_id)) WITHOUT ROWID;
CREATE TABLE rsvps (event_id TEXT NOT NULL, user_id TEXT NOT NULL, answer TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (event_id, user_id)) WITHOUT ROWID;
CREATE TABLE seen (id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE pending (envelope_id TEXT PRIMARY KEY, plaintext BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE conversations (peer_user_id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX conversations_by_id ON conversations (conversation_id);
`;

interface MessageRow {
  seq: number;
  record: string;
  read_at: string | null;
  delivered_at: string | null;
}

const bytes = (b: Buffer): Uint8Array<ArrayBuffer> => new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);

/** The smallest string greater than every string starting with prefix (for an index range scan). */
function prefixEnd(prefix: string): string {
  const last = prefix.charCodeAt(prefix.length - 1);
  return prefix.slice(0, -1) + String.fromCharCode(last + 1);
}

export class SqliteAccountStore implements AccountStore {
  private readonly s;

  private constructor(private readonly db: Database.Database) {
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      kvGet: p("SELECT value FROM kv WHERE key = ?").pluck(),
      kvSet: p("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
      kvDelete: p("DELETE FROM kv WHERE key = ?"),
      kvAll: p("SELECT key FROM kv").pluck(),
      kvRange: p("SELECT key FROM kv WHERE key >= ? AND key < ?").pluck(),
      metaGet: p("SELECT value FROM meta WHERE key = ?").pluck(),
      metaSet: p("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
      msgInsert: p(
        "INSERT INTO messages (message_id, conv, at, record, expires_at, read_at, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
      ),
      msgById: p("SELECT seq, record, read_at, delivered_at FROM messages WHERE message_id = ?"),
      msgReceipt: p("UPDATE messages SET read_at = coalesce(?, read_at), delivered_at = coalesce(?, delivered_at) WHERE message_id = ?"),
      msgDelete: p("DELETE FROM messages WHERE message_id = ? RETURNING seq").pluck(),
      ftsInsert: p("INSERT INTO messages_fts (rowid, text) VALUES (?, ?)"),
      ftsDelete: p("DELETE FROM messages_fts WHERE rowid = ?"),
      atOf: p("SELECT at, seq FROM messages WHERE message_id = ?"),
      expiring: p("SELECT record FROM messages WHERE expires_at IS NOT NULL").pluck(),
      reactionUpsert: p(
        "INSERT INTO reactions VALUES (?, ?, ?, ?) ON CONFLICT (message_id, user_id) DO UPDATE SET emoji = excluded.emoji, at = excluded.at WHERE excluded.at >= reactions.at",
      ),
      editInsert: p("INSERT INTO edits VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"),
      latestEdit: p("SELECT text FROM edits WHERE message_id = ? ORDER BY at DESC, edit_id DESC LIMIT 1").pluck(),
      voteUpsert: p(
        "INSERT INTO votes VALUES (?, ?, ?, ?) ON CONFLICT (poll_id, user_id) DO UPDATE SET choices = excluded.choices, at = excluded.at WHERE excluded.at >= votes.at",
      ),
      rsvpUpsert: p(
        "INSERT INTO rsvps VALUES (?, ?, ?, ?) ON CONFLICT (event_id, user_id) DO UPDATE SET answer = excluded.answer, at = excluded.at WHERE excluded.at >= rsvps.at",
      ),
      seenInsert: p("INSERT INTO seen (id) VALUES (?) ON CONFLICT DO NOTHING"),
      seenGet: p("SELECT 1 FROM seen WHERE id = ?").pluck(),
      pendingSet: p("INSERT INTO pending VALUES (?, ?) ON CONFLICT (envelope_id) DO UPDATE SET plaintext = excluded.plaintext"),
      pendingDelete: p("DELETE FROM pending WHERE envelope_id = ?"),
      pendingGet: p("SELECT plaintext FROM pending WHERE envelope_id = ?").pluck(),
      convSet: p("INSERT INTO conversations VALUES (?, ?) ON CONFLICT (peer_user_id) DO UPDATE SET conversation_id = excluded.conversation_id"),
      convOfPeer: p("SELECT conversation_id FROM conversations WHERE peer_user_id = ?").pluck(),
      peerOfConv: p("SELECT peer_user_id FROM conversations WHERE conversation_id = ?").pluck(),
      foldReactions: p("SELECT message_id, user_id, emoji, at FROM reactions WHERE message_id IN (SELECT value FROM json_each(?))"),
      foldEdits: p("SELECT message_id, edit_id, text, at FROM edits WHERE message_id IN (SELECT value FROM json_each(?))"),
      foldVotes: p("SELECT poll_id, user_id, choices FROM votes WHERE poll_id IN (SELECT value FROM json_each(?))"),
      foldRsvps: p("SELECT event_id, user_id, answer FROM rsvps WHERE event_id IN (SELECT value FROM json_each(?))"),
    };
  }

  /** Opens (creating 0600 if new) the database at file. */
  static open(file: string): SqliteAccountStore {
    // Created by us first so it gets 0600; SQLite gives its -wal and -shm files the database file's permissions.
    closeSync(openSync(file, "a", 0o600));
    chmodSync(file, 0o600);
    const db = new Database(file);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("busy_timeout = 10000");
    const version = db.pragma("user_version", { simple: true }) as number;
    if (version === 0) {
      db.transaction(() => {
        db.exec(SCHEMA);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
      }).immediate();
    } else if (version > SCHEMA_VERSION) {
      db.close();
      throw new Error(`the account database ${file} was written by a newer SDK (schema ${version})`);
    }
    return new SqliteAccountStore(db);
  }

  // ---- key/value (Signal, MLS, pre-key upkeep): same semantics as every KeyValueStore -----------------------

  async get(key: string) {
    const v = this.s.kvGet.get(key) as Buffer | undefined;
    return v ? bytes(v) : undefined;
  }
  async set(key: string, value: Uint8Array<ArrayBuffer>) {
    this.s.kvSet.run(key, Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }
  async delete(key: string) {
    this.s.kvDelete.run(key);
  }
  async list(prefix: string) {
    return (prefix ? this.s.kvRange.all(prefix, prefixEnd(prefix)) : this.s.kvAll.all()) as string[];
  }

  // ---- writes ------------------------------------------------------------------------------------------------

  async apply(batch: WriteBatch, opts: ApplyOptions = {}): Promise<void> {
    if (opts.durability !== "relaxed") return this.applySync(batch);
    // Not fsynced at commit (WAL, synchronous=NORMAL): it survives a process crash, and the next strict commit's
    // fsync makes it durable against power loss too, in order.
    this.db.pragma("synchronous = NORMAL");
    try {
      this.applySync(batch);
    } finally {
      this.db.pragma("synchronous = FULL");
    }
  }

  /** The batch as one IMMEDIATE transaction (a second process on the directory waits rather than interleaving). */
  applySync(batch: WriteBatch, meta: Record<string, string> = {}): void {
    this.db.transaction(() => {
      this.write(batch);
      for (const [k, v] of Object.entries(meta)) this.s.metaSet.run(k, v);
    }).immediate();
  }

  private write(b: WriteBatch): void {
    const s = this.s;
    for (const { key, value } of b.kv ?? []) value ? s.kvSet.run(key, Buffer.from(value.buffer, value.byteOffset, value.byteLength)) : s.kvDelete.run(key);
    if (b.info) s.metaSet.run("account", JSON.stringify(b.info));
    for (const m of b.messages ?? []) this.insertMessage(m);
    for (const r of b.receipts ?? []) s.msgReceipt.run(r.readAt ?? null, r.deliveredAt ?? null, r.messageId);
    for (const id of b.remove ?? []) this.removeMessage(id);
    for (const r of b.reactions ?? []) s.reactionUpsert.run(r.messageId, r.userId, r.emoji ?? "", r.at);
    for (const e of b.edits ?? []) {
      if (s.editInsert.run(e.messageId, e.editId, e.text, e.at).changes) this.reindexEdited(e.messageId);
    }
    for (const v of b.votes ?? []) s.voteUpsert.run(v.pollId, v.userId, JSON.stringify(v.choices), v.at);
    for (const r of b.rsvps ?? []) s.rsvpUpsert.run(r.eventId, r.userId, r.answer, r.at);
    for (const id of b.seen ?? []) s.seenInsert.run(id);
    for (const p of b.pending ?? []) p.plaintext ? s.pendingSet.run(p.envelopeId, Buffer.from(p.plaintext)) : s.pendingDelete.run(p.envelopeId);
    for (const c of b.conversations ?? []) s.convSet.run(c.peerUserId, c.conversationId);
  }

  private insertMessage(m: MessageRecord): void {
    const { readAt, deliveredAt, ...rest } = m;
    const at = Date.parse(m.serverTimestamp);
    const r = this.s.msgInsert.run(m.messageId, conversationKey(m), Number.isFinite(at) ? at : m.sentAt, JSON.stringify(rest), m.expiresAt, readAt ?? null, deliveredAt ?? null);
    if (r.changes) {
      const text = searchText(m.body);
      if (text) this.s.ftsInsert.run(r.lastInsertRowid, text);
    }
  }

  private removeMessage(id: string): void {
    const seq = this.s.msgDelete.get(id) as number | undefined;
    if (seq !== undefined) this.s.ftsDelete.run(seq);
    for (const t of [["reactions", "message_id"], ["edits", "message_id"], ["votes", "poll_id"], ["rsvps", "event_id"]])
      this.db.prepare(`DELETE FROM ${t[0]} WHERE ${t[1]} = ?`).run(id);
  }

  /** Search finds the current version of an edited message, not the replaced text. */
  private reindexEdited(messageId: string): void {
    const row = this.s.msgById.get(messageId) as MessageRow | undefined;
    const text = this.s.latestEdit.get(messageId) as string | undefined;
    if (!row || text === undefined) return;
    this.s.ftsDelete.run(row.seq);
    this.s.ftsInsert.run(row.seq, text);
  }

  // ---- reads -------------------------------------------------------------------------------------------------

  async readInfo(): Promise<AccountInfo | null> {
    const v = this.s.metaGet.get("account") as string | undefined;
    return v ? (JSON.parse(v) as AccountInfo) : null;
  }

  /** A value of the store's own bookkeeping (migration markers). */
  meta(key: string): string | undefined {
    return this.s.metaGet.get(key) as string | undefined;
  }

  async getMessage(messageId: string): Promise<StoredMessage | undefined> {
    const row = this.s.msgById.get(messageId) as MessageRow | undefined;
    return row ? this.folded([row])[0] : undefined;
  }

  async messages(q: PageQuery): Promise<StoredMessage[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.conversation !== undefined) where.push("conv = ?"), args.push(q.conversation);
    if (q.before && "messageId" in q.before) {
      const pos = this.s.atOf.get(q.before.messageId) as { at: number; seq: number } | undefined;
      if (!pos) return [];
      where.push("(at, seq) < (?, ?)"), args.push(pos.at, pos.seq);
    } else if (q.before) where.push("at < ?"), args.push(q.before.at);
    const sql = `SELECT seq, record, read_at, delivered_at FROM messages ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY at DESC, seq DESC LIMIT ?`;
    return this.folded(this.db.prepare(sql).all(...args, q.limit) as MessageRow[]);
  }

  async search(q: SearchQuery): Promise<StoredMessage[]> {
    const match = ftsQuery(q.text);
    if (!match) return [];
    const conv = q.conversation !== undefined ? "AND m.conv = ?" : "";
    const sql = `SELECT m.seq, m.record, m.read_at, m.delivered_at FROM messages_fts f JOIN messages m ON m.seq = f.rowid
      WHERE messages_fts MATCH ? ${conv} ORDER BY m.at DESC, m.seq DESC LIMIT ?`;
    const args = q.conversation !== undefined ? [match, q.conversation, q.limit] : [match, q.limit];
    return this.folded(this.db.prepare(sql).all(...args) as MessageRow[]);
  }

  async expiring() {
    return (this.s.expiring.all() as string[]).map((r) => {
      const m = JSON.parse(r) as MessageRecord;
      return { messageId: m.messageId, peerUserId: m.peerUserId, expiresAt: m.expiresAt! };
    });
  }

  async isSeen(envelopeId: string) {
    return this.s.seenGet.get(envelopeId) !== undefined;
  }
  async pending(envelopeId: string) {
    const v = this.s.pendingGet.get(envelopeId) as Buffer | undefined;
    return v ? bytes(v) : undefined;
  }
  async conversationWith(peerUserId: string) {
    return this.s.convOfPeer.get(peerUserId) as string | undefined;
  }
  async peerOf(conversationId: string) {
    return this.s.peerOfConv.get(conversationId) as string | undefined;
  }

  /** Folds each message's reactions, edits, votes and RSVPs in, with one query per kind for the whole page. */
  private folded(rows: MessageRow[]): StoredMessage[] {
    if (!rows.length) return [];
    const records = rows.map((r) => {
      const m = JSON.parse(r.record) as MessageRecord;
      if (r.read_at) m.readAt = r.read_at;
      if (r.delivered_at) m.deliveredAt = r.delivered_at;
      return m;
    });
    const ids = JSON.stringify(records.map((m) => m.messageId));
    const by = new Map<string, FoldRows>(records.map((m) => [m.messageId, { reactions: [], edits: [], votes: [], rsvps: [] }]));
    type R = Record<string, string>;
    for (const r of this.s.foldReactions.all(ids) as R[]) by.get(r.message_id)!.reactions.push({ userId: r.user_id, emoji: r.emoji, at: r.at });
    for (const r of this.s.foldEdits.all(ids) as R[]) by.get(r.message_id)!.edits.push({ text: r.text, at: r.at, editId: r.edit_id });
    for (const r of this.s.foldVotes.all(ids) as R[]) by.get(r.poll_id)!.votes.push({ userId: r.user_id, choices: JSON.parse(r.choices) as number[] });
    for (const r of this.s.foldRsvps.all(ids) as R[]) by.get(r.event_id)!.rsvps.push({ userId: r.user_id, answer: r.answer as RsvpAnswer });
    return records.map((m) => fold(m, by.get(m.messageId)!));
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
