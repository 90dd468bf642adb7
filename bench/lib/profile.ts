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

export async function summariseProfile(file: string, top = 15) {
  const p = JSON.parse(await readFile(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
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
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: Math.round(us / 1000), share: `${((100 * us) / total).toFixed(1)} %` }));
  return { totalMs: Math.round(total / 1000), functions: rows(fns), packages: rows(pkgs) };
}
