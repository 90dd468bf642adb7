/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per package, so a profile under load
 * says where the time goes without opening DevTools.
 */
import { readFile } from "node:fs/promises";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  startTime: number;
  endTime: number;
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

/** node_modules/<pkg> (or @scope/pkg), node: internals, this repo's files, or the VM's own buckets (idle, GC). */
function owner(url: string, fn: string): string {
  if (!url) return `(${fn || "anonymous"})`;
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  if (url.startsWith("node:")) return "node internals";
  const repo = /\/(src|bench|graders)\/.*$/.exec(url);
  return repo ? repo[1]! + "/" : url;
}

/**
 * `window`: only samples between `fromEndMs` and `toEndMs` before the profile's end (e.g. the load phase, not the
 * start-up and seeding before it).
 */
export async function summariseProfile(file: string, top = 15, window?: { fromEndMs: number; toEndMs: number }) {
  const p = JSON.parse(await readFile(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    const beforeEndMs = (p.endTime - t) / 1000;
    if (window && (beforeEndMs > window.fromEndMs || beforeEndMs < window.toEndMs)) continue;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  // Shares are of busy time: idle (waiting for I/O) is not where the time goes.
  const idle = [...self].filter(([id]) => byId.get(id)!.callFrame.functionName === "(idle)").reduce((a, [, us]) => a + us, 0);
  const busy = total - idle;
  const fns = new Map<string, number>();
  const pkgs = new Map<string, number>();
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const where = url ? `${url.replace(/^.*?(node_modules\/|\/src\/|\/bench\/)/, "$1")}:${lineNumber + 1}` : "";
    const key = `${functionName || "(anonymous)"} ${where}`.trim();
    fns.set(key, (fns.get(key) ?? 0) + us);
    const o = owner(url, functionName);
    pkgs.set(o, (pkgs.get(o) ?? 0) + us);
  }
  const rows = (m: Map<string, number>) =>
    [...m]
      .filter(([name]) => name !== "((idle))" && !name.startsWith("(idle)"))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: Math.round(us / 1000), share: `${((100 * us) / busy).toFixed(1)} %` }));
  return { totalMs: Math.round(total / 1000), busyMs: Math.round(busy / 1000), functions: rows(fns), packages: rows(pkgs) };
}
