/**
 * `npm run demo`: against a running server, an instructor, a course, three students and an assignment of
 * the mid-term review; Alice submits every reference solution, Bob a mix, Carol wrong answers; then the
 * grades come back with a progress bar and a score table.
 *
 *   API_URL      default http://localhost:3000
 *   ADMIN_TOKEN  the server's bootstrap token (first run), or ADMIN_API_TOKEN: an admin's personal token
 */
import path from "node:path";
import { MultiBar, Presets } from "cli-progress";
import { answerFor, readSolutions, type Solution } from "../src/catalog/solutions.ts";

const API = (process.env.API_URL ?? "http://localhost:3000").replace(/\/$/, "");
const SET = "dl-midterm-review";
const PROBLEMS_DIR = path.join(process.env.PROBLEMS_DIR ?? "problems", SET);

type Json = Record<string, any>;

async function call(token: string, method: string, url: string, body?: unknown, form?: FormData): Promise<Json> {
  const res = await fetch(`${API}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: form ?? (body === undefined ? undefined : JSON.stringify(body)),
  }).catch(() => die(`Cannot reach ${API}: start the server first (npm start), or set API_URL.`));
  const json = res.status === 204 ? {} : await res.json();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${json.error?.code}: ${json.error?.message}`);
  return json;
}

function die(message: string): never {
  console.error(message);
  process.exit(1);
}

/** An admin's token: ADMIN_API_TOKEN as given, or a demo admin bootstrapped with ADMIN_TOKEN. */
async function adminToken(tag: string): Promise<string> {
  if (process.env.ADMIN_API_TOKEN) return process.env.ADMIN_API_TOKEN;
  const boot = process.env.ADMIN_TOKEN ?? die("Set ADMIN_TOKEN (the server's bootstrap token) or ADMIN_API_TOKEN (an admin's API token).");
  const admin = await call(boot, "POST", "/v1/users", { email: `demo-admin-${tag}@example.org`, name: "Demo admin", role: "admin" }).catch(
    (e: Error) =>
      die(`${e.message}\nThe bootstrap token is retired once an admin has a token: pass that admin's token as ADMIN_API_TOKEN.`),
  );
  const { token } = await call(boot, "POST", `/v1/users/${admin.id}/tokens`, { name: "demo" });
  console.log(`Created admin ${admin.email}; its token (keep it, ADMIN_TOKEN is now retired): ${token}`);
  return token;
}

async function main() {
  const tag = new Date().toISOString().replace(/\D/g, "").slice(0, 14);
  const admin = await adminToken(tag);
  const person = async (name: string) => {
    const u = await call(admin, "POST", "/v1/users", { email: `${name.toLowerCase()}-${tag}@example.org`, name });
    return { id: u.id as string, name, token: (await call(admin, "POST", `/v1/users/${u.id}/tokens`, { name: "demo" })).token as string };
  };
  const course = await call(admin, "POST", "/v1/courses", { slug: `demo-${tag}`, title: "Deep Learning (demo)" });
  const prof = await person("Professor");
  await call(admin, "PUT", `/v1/courses/${course.id}/enrollments/${prof.id}`, { role: "instructor" });
  const students = [await person("Alice"), await person("Bob"), await person("Carol")];
  for (const s of students) await call(prof.token, "PUT", `/v1/courses/${course.id}/enrollments/${s.id}`, { role: "student" });
  const assignment = await call(prof.token, "POST", `/v1/courses/${course.id}/assignments`, { problemSet: SET, title: "Mid-term review" });
  console.log(`Course ${course.slug}, assignment ${assignment.id}: ${students.map((s) => s.name).join(", ")} submit.`);

  // Alice: every reference; Bob: references and wrong answers in turn; Carol: wrong answers.
  const pick = (solutions: Solution[], student: number, i: number) => {
    const ref = solutions.find((s) => s.kind === "reference");
    const wrong = solutions.find((s) => s.kind === "wrong") ?? ref;
    return student === 0 || (student === 1 && i % 2 === 0) ? ref : wrong;
  };
  const jobs: { student: number; problem: string; id: string; points: number }[] = [];
  for (const [si, s] of students.entries()) {
    const set = await call(s.token, "GET", `/v1/problem-sets/${SET}`);
    for (const [i, p] of (set.problems as Json[]).entries()) {
      const solution = pick(await readSolutions(path.join(PROBLEMS_DIR, p.slug)), si, i);
      if (!solution) continue;
      const url = `/v1/assignments/${assignment.id}/problems/${p.slug}/submissions`;
      let form: FormData | undefined;
      if (solution.model) {
        form = new FormData();
        form.append("model", new Blob([solution.model as Uint8Array<ArrayBuffer>]), solution.name);
      }
      const answer = solution.model ? undefined : { answer: answerFor(solution, p.answerFormat.params ?? {}) };
      const sub = await call(s.token, "POST", url, answer, form);
      jobs.push({ student: si, problem: p.slug, id: sub.id, points: p.points });
    }
  }

  const progress = progressDisplay(students.map((s, i) => ({ name: s.name, total: jobs.filter((j) => j.student === i).length })));
  const results = new Map<string, Json>();
  // No polling loop: each request is held by the API until its submission is graded (long-poll, ?wait=30),
  // and asked again only if 30 s pass first.
  await Promise.all(
    jobs.map(async (j) => {
      for (;;) {
        const sub = await call(students[j.student]!.token, "GET", `/v1/submissions/${j.id}?wait=30`);
        if (["queued", "running"].includes(sub.status)) continue;
        results.set(j.id, sub);
        progress.graded(j.student);
        return;
      }
    }),
  );
  progress.stop();

  const problems = [...new Set(jobs.map((j) => j.problem))];
  const cell = (si: number, problem: string) => {
    const j = jobs.find((x) => x.student === si && x.problem === problem);
    const r = j && results.get(j.id);
    return r ? (r.status === "graded" ? `${+Number(r.score).toFixed(2)}/${j.points}` : r.status) : "-";
  };
  console.table(problems.map((p) => Object.fromEntries([["problem", p], ...students.map((s, si) => [s.name, cell(si, p)])])));
  const total = (si: number) => jobs.filter((j) => j.student === si).reduce((acc, j) => acc + Number(results.get(j.id)?.score ?? 0), 0);
  const max = jobs.filter((j) => j.student === 0).reduce((acc, j) => acc + j.points, 0);
  console.log(students.map((s, si) => `${s.name} ${total(si).toFixed(2)}/${max}`).join("   "));
}

/** Bars on a terminal; one line per change otherwise (CI logs, pipes). */
function progressDisplay(rows: { name: string; total: number }[]) {
  const done = rows.map(() => 0);
  if (!process.stdout.isTTY) {
    return {
      graded(i: number) {
        done[i]!++;
        console.log(`graded ${rows.map((r, k) => `${r.name} ${done[k]}/${r.total}`).join(", ")}`);
      },
      stop() {},
    };
  }
  const bars = new MultiBar({ format: " {name} [{bar}] {value}/{total} graded", hideCursor: true }, Presets.shades_classic);
  const perRow = rows.map((r) => bars.create(r.total, 0, { name: r.name.padEnd(6) }));
  return { graded: (i: number) => perRow[i]!.increment(), stop: () => bars.stop() };
}

main().catch((e) => die(`demo failed: ${(e as Error).message}`));
