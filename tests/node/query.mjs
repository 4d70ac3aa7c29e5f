// Runs each SQL statement of argv[3] (a JSON list) on the DuckDB file argv[2], opened read-only,
// and prints one JSON list: {rows} or {error} per statement. No sqlml, no Python: what a BI
// tool's Node backend sees.
import { DuckDBInstance } from '@duckdb/node-api';

const instance = await DuckDBInstance.create(process.argv[2], { access_mode: 'READ_ONLY' });
const connection = await instance.connect();
const out = [];
for (const sql of JSON.parse(process.argv[3])) {
  try {
    const reader = await connection.runAndReadAll(sql);
    out.push({ rows: reader.getRowsJson() });
  } catch (e) {
    out.push({ error: String(e.message) });
  }
}
console.log(JSON.stringify(out));
