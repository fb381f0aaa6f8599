// Benchmark setup that is not what is measured: accounts written straight into the database. One device is
// registered through the API with real libsignal keys (the server checks its signatures); the others are rows that
// reuse that device's public key material under their own user id and their own bearer token (stored as its SHA-256
// hash, exactly as registerAccount stores it). The server accepts them like any registered device: it checks
// signatures on upload, not on every use. Registering 100,000 devices with fresh libsignal keys would take hours
// on this machine (measured per device in BENCHMARKS.md).
import { randomUUID } from "node:crypto";
import pg from "pg";
import { hashSecret, newSecret } from "../../src/accounts/tokens.ts";
import { registerDevice } from "../../test/helpers/accounts.ts";

export interface SeededDevice {
  userId: string;
  deviceId: number;
  token: string;
  registrationId: number;
}

export async function seedDevices(httpUrl: string, databaseUrl: string, count: number): Promise<SeededDevice[]> {
  const t0 = performance.now();
  const template = await registerDevice(httpUrl, { oneTimeKeys: 0 });
  const t1 = performance.now();
  const sql = new pg.Client({ connectionString: databaseUrl });
  await sql.connect();
  const out: SeededDevice[] = [];
  try {
    const CHUNK = 5000;
    for (let start = 0; start < count; start += CHUNK) {
      const n = Math.min(CHUNK, count - start);
      const ids: string[] = [];
      const hashes: Buffer[] = [];
      for (let i = 0; i < n; i++) {
        const token = newSecret("vgt");
        const userId = randomUUID();
        ids.push(userId);
        hashes.push(Buffer.from(hashSecret(token)));
        out.push({ userId, deviceId: 1, token, registrationId: template.signal.registrationId });
      }
      await sql.query("BEGIN");
      await sql.query("INSERT INTO users (id) SELECT unnest($1::uuid[])", [ids]);
      await sql.query(
        `INSERT INTO devices (user_id, device_id, registration_id, identity_key, token_hash, signed_pre_key_id,
           signed_pre_key, signed_pre_key_signature, kyber_last_resort_key_id, kyber_last_resort_key,
           kyber_last_resort_signature)
         SELECT u.id, 1, t.registration_id, t.identity_key, u.h, t.signed_pre_key_id, t.signed_pre_key,
           t.signed_pre_key_signature, t.kyber_last_resort_key_id, t.kyber_last_resort_key, t.kyber_last_resort_signature
         FROM unnest($1::uuid[], $2::bytea[]) AS u(id, h), devices t
         WHERE t.user_id = $3::uuid AND t.device_id = 1`,
        [ids, hashes, template.userId],
      );
      await sql.query("COMMIT");
    }
  } finally {
    await sql.end();
  }
  console.log(
    `setup: one registration through the API with fresh libsignal keys ${(t1 - t0).toFixed(0)} ms; ` +
      `${count} devices written through SQL in ${(performance.now() - t1).toFixed(0)} ms`,
  );
  return out;
}
