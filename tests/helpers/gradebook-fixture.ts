import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createAssignment, createWorld, waitForGrade, type Harness, type World } from "./harness.ts";

/**
 * A known gradebook for the export and statistics tests, built through the API and real workers: students with
 * hostile names, an on-time assignment with a hostile title, a late one (36 h past due at 25 %/day → factor 0.5),
 * an override, a student without any submission. Every expected number below follows from these answers.
 */

export const HOSTILE_TITLE = `=cmd|' /C calc'!A0 <script>alert(1)</script>`;
export const OVERRIDE_COMMENT = `=1+1 "ok", fine`;
export const CANVAS_ID = "12345";

/** Names as sorted by the exports (byte order of the name). */
export const STUDENTS = [
  { key: "plus", name: "+1", email: "plus@example.org" },
  { key: "minus", name: "-2", email: "minus@example.org" },
  { key: "at", name: "@x", email: "at@example.org" },
  { key: "ann", name: "Ann\nLine", email: "ann@example.org" },
  { key: "obrien", name: `O'Brien, "Jr."`, email: "obrien@example.org" },
  { key: "zoe", name: `Zoë =HYPERLINK("http://x","y")`, email: "zoe@example.org" },
] as const;
export type StudentKey = (typeof STUDENTS)[number]["key"];

export interface Gradebook {
  world: World;
  onTime: string;
  late: string;
  users: Record<StudentKey, { id: string; token: string }>;
  /** Submission ids by `${student}/${assignment}/${problem}/${attempt}`. */
  subs: Map<string, string>;
}

async function writeSet(dir: string) {
  await mkdir(path.join(dir, "pick"), { recursive: true });
  await mkdir(path.join(dir, "pi"), { recursive: true });
  await writeFile(path.join(dir, "set.yaml"), `slug: export-set\ntitle: Export set\nproblems: [pick, pi]\n`);
  await writeFile(
    path.join(dir, "pick", "problem.yaml"),
    `title: Pick a colour\npoints: 2\nstatement: Which is a colour?\ngrader:\n  type: choice\n  options: [{ id: red, text: Red }, { id: dog, text: Dog }, { id: car, text: Car }]\n  correct: [red]\n`,
  );
  await writeFile(
    path.join(dir, "pi", "problem.yaml"),
    `title: Pi\npoints: 1\nstatement: Pi to two decimals?\ngrader:\n  type: numeric\n  answer: 3.14159\n  rtol: 0.001\n`,
  );
}

async function ok(res: { statusCode: number; body: string; json(): unknown }, status: number) {
  if (res.statusCode !== status) throw new Error(`expected ${status}, got ${res.statusCode}: ${res.body}`);
  return res.json() as Record<string, string>;
}

export async function buildGradebook(h: Harness): Promise<Gradebook> {
  const tmp = await mkdtemp(path.join(tmpdir(), "export-set-"));
  try {
    await writeSet(path.join(tmp, "export-set"));
    await h.loadSet(path.join(tmp, "export-set"));
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const world = await createWorld(h, { students: 0, course: "stats-101" });
  const users = {} as Gradebook["users"];
  for (const s of STUDENTS) {
    const u = await ok(await h.call("POST", "/v1/users", { token: world.adminToken, body: { email: s.email, name: s.name } }), 201);
    const t = await ok(await h.call("POST", `/v1/users/${u.id}/tokens`, { token: world.adminToken, body: { name: "t" } }), 201);
    await ok(
      await h.call("PUT", `/v1/courses/${world.courseId}/enrollments/${u.id}`, { token: world.adminToken, body: { role: "student" } }),
      200,
    );
    users[s.key] = { id: u.id!, token: t.token! };
  }
  const onTime = await createAssignment(h, world, { problemSet: "export-set", title: HOSTILE_TITLE });
  const day = 86_400_000;
  const late = await createAssignment(h, world, {
    problemSet: "export-set",
    title: "Late work",
    dueAt: new Date(Date.now() - 1.5 * day).toISOString(),
    lateUntil: new Date(Date.now() + day).toISOString(),
    latePenaltyPerDay: 0.25,
  });
  // The Canvas id of a linked assignment (set by the LTI link in production).
  await h.db.assignment.update({ where: { id: late }, data: { lmsAssignmentId: CANVAS_ID } });

  const subs = new Map<string, string>();
  const submit = async (who: StudentKey, assignment: "onTime" | "late", problem: "pick" | "pi", answer: unknown) => {
    const a = assignment === "onTime" ? onTime : late;
    const res = await h.call("POST", `/v1/assignments/${a}/problems/${problem}/submissions`, { token: users[who].token, body: { answer } });
    const body = await ok(res, 202);
    // Generous: on a loaded machine a grade can take a while; the test checks results, not speed.
    await waitForGrade(h, body.id!, users[who].token, 90_000);
    subs.set(`${who}/${assignment}/${problem}/${body.attempt}`, body.id!);
  };
  await submit("obrien", "onTime", "pick", { selected: ["dog"] });
  await submit("obrien", "onTime", "pick", { selected: ["red"] });
  await submit("obrien", "onTime", "pi", { value: 3.14 });
  await submit("zoe", "onTime", "pick", { selected: ["car"] });
  await submit("zoe", "onTime", "pi", { value: 2.5 });
  await submit("ann", "onTime", "pick", { selected: ["red"] });
  await submit("plus", "onTime", "pick", { selected: ["dog"] });
  await submit("plus", "late", "pi", { value: 3.1416 });
  await submit("at", "late", "pick", { selected: ["red"] });
  // A TA's manual score for Zoë's wrong pick (the override API is another part of the gradebook; the row is what counts).
  await h.db.scoreOverride.create({
    data: { submissionId: subs.get("zoe/onTime/pick/1")!, score: 1.5, comment: OVERRIDE_COMMENT, byId: world.instructor.id },
  });
  return { world, onTime, late, users, subs };
}
