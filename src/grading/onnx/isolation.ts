import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { userInfo } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Isolation } from "../../../graders/onnx/types.ts";

/**
 * How sandbox children are started on this host, decided once per process: the command prefix that
 * caps memory, forbids core dumps, limits processes, drops root and removes the network, each verified
 * by starting a real child through it. What applied is recorded on every grade (Grade.isolation).
 *
 * Fail closed: without `prlimit` there is no memory cap, and without a memory cap there is no grading,
 * unless the operator says SANDBOX_ALLOW_UNCAPPED=true (development only; the grade then says so).
 */

export type { Isolation };

/** What every child runs: the sandbox script and onnxruntime-node's entry (its account must be able to read both). */
export const ORT_ENTRY = createRequire(import.meta.url).resolve("onnxruntime-node");
export const CHILD_SCRIPT = fileURLToPath(new URL("./sandbox-child.mjs", import.meta.url));

export interface IsolationOptions {
  memoryBytes: number;
  maxProcs: number;
  /** Account the children run as when this process is root. */
  user: string;
  allowUncapped: boolean;
  /** Where prlimit, unshare and setpriv are looked up (default: this process's PATH). */
  path?: string;
}

export interface SandboxPlan {
  /** Put before `node child.mjs …`; every tool in it execs, so the child keeps the spawned pid. */
  prefix: string[];
  isolation: Isolation;
  /** For the operator's log, when the plan is weaker than the settings ask for. */
  warning?: string;
}

/** The worker cannot run models safely on this host; the message is one line for the operator. */
export class SandboxUnavailable extends Error {}

const plans = new Map<string, SandboxPlan>();

/** Cached per settings: probing starts a few short-lived node processes. */
export function planSandbox(o: IsolationOptions): SandboxPlan {
  const key = JSON.stringify(o);
  let plan = plans.get(key);
  if (!plan) {
    plan = decide(o);
    plans.set(key, plan);
  }
  return plan;
}

function decide(o: IsolationOptions): SandboxPlan {
  const find = (cmd: string) => findOnPath(cmd, o.path ?? process.env.PATH ?? "");
  const prlimit = find("prlimit");
  if (!prlimit && !o.allowUncapped)
    throw new SandboxUnavailable(
      "prlimit (util-linux) was not found on PATH, so sandbox children would run without a memory cap: install util-linux, or set SANDBOX_ALLOW_UNCAPPED=true on a development machine.",
    );
  const limits = prlimit ? [prlimit, `--as=${o.memoryBytes}`, "--core=0", `--nproc=${o.maxProcs}`, "--"] : [];
  const capped = {
    memoryCapMb: prlimit ? Math.round(o.memoryBytes / 2 ** 20) : null,
    core: !prlimit,
    nprocs: prlimit ? o.maxProcs : null,
  };

  const root = process.getuid?.() === 0;
  const account = root ? lookupUser(o.user) : null;
  const setpriv = find("setpriv");
  const unshare = find("unshare");
  if (root && !setpriv)
    throw new SandboxUnavailable(
      `setpriv (util-linux) was not found on PATH, so sandbox children cannot drop root to SANDBOX_USER '${o.user}': install util-linux, or run the worker as an unprivileged user.`,
    );
  let drop = account ? [setpriv!, `--reuid=${account.uid}`, `--regid=${account.gid}`, "--clear-groups", "--no-new-privs", "--"] : [];
  let warning: string | undefined;
  // The account must be able to read the child's code, and a checkout under /root (mode 0700) is not readable.
  // Rather than grade nothing, children then stay root, the grade says so (user: "root"), and the log says how to fix it.
  if (account && probe(drop, "host", account.uid, [CHILD_SCRIPT, ORT_ENTRY]) !== null) {
    warning = `SANDBOX_USER '${o.user}' cannot read ${CHILD_SCRIPT} or onnxruntime-node, so sandbox children run as root: install the application where that account can read it (e.g. /app), or run the worker unprivileged.`;
    drop = [];
  }
  const uid = drop.length ? account!.uid : null;
  const user = drop.length ? o.user : userInfo().username;

  // Most isolated first: root makes a network namespace and then drops to the account; an unprivileged
  // process needs a user namespace for that (unshare -r), which containers often forbid.
  const candidates: { prefix: string[]; network: Isolation["network"] }[] = [];
  if (unshare && root) candidates.push({ prefix: [unshare, "-n", "--", ...drop, ...limits], network: "none" });
  if (unshare) candidates.push({ prefix: [...drop, unshare, "-rn", "--", ...limits], network: "none" });
  candidates.push({ prefix: [...drop, ...limits], network: "host" });

  const failures: string[] = [];
  for (const c of candidates) {
    const problem = probe(c.prefix, c.network, uid);
    if (problem === null) return { prefix: c.prefix, isolation: { ...capped, user, network: c.network }, warning };
    failures.push(`${c.prefix.map((p) => p.split("/").pop()).join(" ")}: ${problem}`);
  }
  throw new SandboxUnavailable(`No sandbox child could be started on this host (${failures.join("; ")}).`);
}

/** A child that reads `files` and reports its uid and network interfaces; null when it started as planned. */
function probe(prefix: string[], network: Isolation["network"], uid: number | null, files: string[] = []): string | null {
  const script = `const fs=require('fs'),os=require('os');for(const f of ${JSON.stringify(files)})fs.accessSync(f,fs.constants.R_OK);process.stdout.write(JSON.stringify({uid:process.getuid(),ifaces:Object.keys(os.networkInterfaces())}))`;
  const argv = [...prefix, process.execPath, "-e", script];
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd: "/", env: { PATH: process.env.PATH ?? "" }, timeout: 15_000, encoding: "utf8" });
  if (r.error) return r.error.message;
  if (r.status !== 0) return (r.stderr || `exit ${r.status ?? r.signal}`).trim().split("\n").pop()!.slice(0, 200);
  try {
    const seen = JSON.parse(r.stdout) as { uid: number; ifaces: string[] };
    // Inside a user namespace the account shows as root; outside one it must be the account itself.
    if (uid !== null && !prefix.includes("-rn") && seen.uid !== uid) return `runs as uid ${seen.uid}, not ${uid}`;
    if (network === "none" && seen.ifaces.some((i) => i !== "lo")) return `still sees ${seen.ifaces.join(", ")}`;
    return null;
  } catch {
    return "no report from the probe";
  }
}

function lookupUser(name: string): { uid: number; gid: number } {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .map((l) => l.split(":"))
    .find((f) => f[0] === name);
  const uid = Number(line?.[2]);
  const gid = Number(line?.[3]);
  if (!line || !Number.isInteger(uid) || !Number.isInteger(gid))
    throw new SandboxUnavailable(
      `SANDBOX_USER '${name}' does not exist on this host: create it, or name an existing unprivileged account.`,
    );
  if (uid === 0) throw new SandboxUnavailable(`SANDBOX_USER '${name}' is root; name an unprivileged account.`);
  return { uid, gid };
}

export function findOnPath(cmd: string, path: string): string | null {
  for (const dir of path.split(delimiter)) {
    const p = join(dir, cmd);
    if (dir && existsSync(p)) return p;
  }
  return null;
}
