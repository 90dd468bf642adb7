// One export for bench/export.ts, as production runs it: the compiled build (dist/, built by the parent), loading only
// the export's own modules (GradeExporter on plain pg: no tsx, no Prisma client, no app). Prints one JSON line: time, CPU
// time and peak RSS (VmHWM: the whole process) of the export, or of the bare cursor read ("baseline") of the same rows
// on the same cursor settings with nothing done to them. Plain JS so that no TypeScript loader is in the process.
//
//   node bench/export-child.mjs <database url> <course slug> <baseline|json|csv|canvas|moodle|html>
import { createWriteStream, readFileSync } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { exportCursor } from "../dist/src/services/gradebook/export-stream.js";
import { GradeExporter } from "../dist/src/services/gradebook/exporter.js";

const [url, slug, format] = process.argv.slice(2);
const vmHwmMb = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))[1]) / 1024;

const exporter = new GradeExporter(url);
const courseId = await exporter.courseIdBySlug(slug);
if (!courseId) throw new Error(`no course ${slug}`);
const { assignments } = await exporter.load(courseId);
const rssBeforeMb = process.memoryUsage().rss / 2 ** 20;
let bytes = 0;
let rows = 0;
const t0 = performance.now();
const cpu0 = process.cpuUsage();
if (format === "baseline") {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const stream = await exportCursor(
    client,
    courseId,
    assignments.map((a) => a.id),
    false,
  );
  for await (const _row of stream) rows++;
  await client.query("COMMIT");
  await client.end();
} else {
  const out = await exporter.export(courseId, format);
  const body = Buffer.isBuffer(out.body) ? Readable.from([out.body]) : out.body;
  body.on("data", (chunk) => (bytes += Buffer.byteLength(chunk)));
  await pipeline(body, createWriteStream("/dev/null"));
}
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const sample = {
  ms: Math.round(ms),
  cpuMs: Math.round((cpu.user + cpu.system) / 1000),
  peakRssMb: Math.round(vmHwmMb()),
  rssBeforeMb: Math.round(rssBeforeMb),
  bytes,
  ...(rows ? { rows } : {}),
};
process.stdout.write(JSON.stringify(sample) + "\n");
await exporter.close();
