/**
 * How every benchmark reports: one table on stdout and one JSON file, bench/results/<name>-<ISO date>.json, with
 * the facts of the machine it ran on (absolute numbers only mean something next to them and to the baseline).
 */
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg, totalmem } from "node:os";

export function machineFacts() {
  const commit = (() => {
    try {
      return execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    } catch {
      return null;
    }
  })();
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? null,
    memoryGb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    gitCommit: commit,
    // The load before the run: other work on a shared machine moves every number.
    loadavg1m: Math.round(loadavg()[0]! * 100) / 100,
  };
}

type Cell = string | number | null | undefined;

const fmt = (v: Cell): string =>
  v === null || v === undefined || (typeof v === "number" && Number.isNaN(v))
    ? "—"
    : typeof v === "number"
      ? Number.isInteger(v)
        ? v.toLocaleString("en-US")
        : v.toLocaleString("en-US", { maximumFractionDigits: v < 10 ? 2 : 1 })
      : v;

/** A Markdown table, so the output pastes into the README as it is. */
export function printTable(title: string, rows: Record<string, Cell>[]): string {
  const headers = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const lines = [
    `| ${headers.join(" | ")} |`,
    `|${headers.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${headers.map((h) => fmt(r[h])).join(" | ")} |`),
  ];
  const text = `\n### ${title}\n\n${lines.join("\n")}\n`;
  console.log(text);
  return text;
}

export async function writeResult(name: string, data: Record<string, unknown>): Promise<string> {
  await mkdir("bench/results", { recursive: true });
  const date = new Date().toISOString();
  const file = `bench/results/${name}-${date.replace(/[:.]/g, "-")}.json`;
  await writeFile(file, JSON.stringify({ name, date, machine: machineFacts(), ...data }, null, 2));
  console.log(`wrote ${file}`);
  return file;
}

export const log = (msg: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);

/** A progress callback that logs at most every 5 s. */
export function progress(what: string) {
  let last = 0;
  return (done: number, total: number) => {
    if (Date.now() - last < 5000) return;
    log(`${what}: ${done}/${total} done`);
    last = Date.now();
  };
}
