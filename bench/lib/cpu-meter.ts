// CPU used by each side of a benchmark step: the server process (with its workers), the PostgreSQL backends serving the bench
// database, and this load process. Divided by the operations of the step it gives a cost per operation that
// other work on the machine hardly changes (a throughput figure halves when another process takes a core).
import pg from "pg";
import { cpuSeconds, serverProcesses } from "./proc.ts";

export interface CpuReading {
  server: number;
  postgres: number;
  load: number;
}

export class CpuMeter {
  private readonly sql: pg.Pool;

  constructor(
    private readonly serverPid: number,
    databaseUrl: string,
  ) {
    this.sql = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  }

  /** CPU seconds so far; backends that come and go between two readings are missed (the server's pool keeps its). */
  async read(): Promise<Map<string, number>> {
    const { rows } = await this.sql.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    const out = new Map<string, number>([
      ["server", serverProcesses(this.serverPid).reduce((sum, pid) => sum + cpuSeconds(pid), 0)],
      ["load", process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6],
    ]);
    for (const r of rows) {
      try {
        out.set(`pg:${r.pid}`, cpuSeconds(r.pid));
      } catch {
        // gone since the query
      }
    }
    return out;
  }

  static diff(before: Map<string, number>, after: Map<string, number>): CpuReading {
    let postgres = 0;
    for (const [k, v] of after) if (k.startsWith("pg:") && before.has(k)) postgres += v - before.get(k)!;
    return { server: after.get("server")! - before.get("server")!, postgres, load: after.get("load")! - before.get("load")! };
  }

  close(): Promise<void> {
    return this.sql.end();
  }
}
