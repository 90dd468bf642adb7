import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  allowed,
  claim,
  claimableAt,
  fail,
  finish,
  isTerminal,
  release,
  renew,
  STATES,
  supersede,
  TRANSITIONS,
  type GradeData,
  type Lease,
  type Outcome,
  type State,
} from "../src/grading/states.ts";
import { coalescedRunWrites, type RunWrites } from "../src/grading/run-writes.ts";
import { createAssignment, createHarness, createWorld, type Harness, type World } from "./helpers/harness.ts";

let h: Harness;
let w: World;
let template: { assignmentId: string; userId: string; problemSlug: string; problemId: string; seed: string };
let attempt = 1000;

beforeAll(async () => {
  h = await createHarness("states");
  await h.loadSet("tests/fixtures/sets/grader-zoo");
  w = await createWorld(h, { students: 1 });
  const assignmentId = await createAssignment(h, w, { problemSet: "grader-zoo" });
  const res = await h.call("POST", `/v1/assignments/${assignmentId}/problems/single-choice/submissions`, {
    token: w.students[0]!.token,
    body: { answer: { selected: ["red"] } },
  });
  expect(res.statusCode).toBe(202);
  const s = await h.db.submission.findUniqueOrThrow({ where: { id: res.json().id } });
  template = { assignmentId, userId: s.userId, problemSlug: s.problemSlug, problemId: s.problemId, seed: s.seed };
});
afterAll(() => h?.close());
let coalesced: RunWrites;
beforeAll(() => {
  coalesced = coalescedRunWrites(h.db, 16);
});

/** A fresh queued submission (no job: these tests drive the state machine directly). */
const newSubmission = async () => (await h.db.submission.create({ data: { ...template, attempt: attempt++, answer: {} } })).id;
const gradeData = (): GradeData => ({
  status: "graded",
  score: 1,
  rawScore: 1,
  maxScore: 1,
  feedback: {},
  problemId: template.problemId,
  graderType: "test",
  graderVersion: "1",
  durationMs: 1,
});
const result = (status: Outcome) => ({ status, lastError: null, lastErrorCode: null });

describe("the transition table", () => {
  it("names only real states", () => {
    for (const t of Object.values(TRANSITIONS)) for (const s of [...t.from, ...t.to]) expect(STATES).toContain(s);
  });

  it("allows what the lifecycle needs and nothing else", () => {
    expect(allowed("claim", "queued", "running")).toBe(true);
    expect(allowed("claim", "running", "running")).toBe(true); // a lease that has passed
    expect(allowed("claim", "graded", "running")).toBe(false);
    expect(allowed("finish", "running", "graded")).toBe(true);
    expect(allowed("finish", "queued", "graded")).toBe(false);
    expect(allowed("finish", "running", "queued")).toBe(false);
    expect(allowed("release", "running", "queued")).toBe(true);
    expect(allowed("release", "queued", "queued")).toBe(false);
    expect(allowed("supersede", "graded", "queued")).toBe(true);
    expect(allowed("supersede", "running", "running")).toBe(false);
    expect(allowed("fail", "queued", "failed")).toBe(true);
    expect(allowed("fail", "graded", "failed")).toBe(false);
  });

  it("lets only a regrade leave a finished state", () => {
    expect(STATES.filter(isTerminal)).toEqual(["graded", "rejected", "failed"]);
  });
});

describe("leases", () => {
  it("a second worker cannot claim a live lease, and can once it has passed", async () => {
    const id = await newSubmission();
    const a = await claim(h.db, { submissionId: id, run: 1 }, "a", 60_000);
    expect(a).toMatchObject({ holder: "a", claims: 1 });
    expect(await claim(h.db, { submissionId: id, run: 1 }, "b", 60_000)).toBeNull();
    expect((await claimableAt(h.db, { submissionId: id, run: 1 }))!.getTime()).toBe(a!.leaseUntil.getTime());
    await h.db.submission.update({ where: { id }, data: { leaseUntil: new Date(Date.now() - 1000) } });
    expect(await claim(h.db, { submissionId: id, run: 1 }, "b", 60_000)).toMatchObject({ holder: "b", claims: 2 });
    expect(await renew(h.db, a!, 60_000)).toBe(false);
    expect(await finish(h.db, a!, result("graded"), gradeData())).toBeNull();
    expect(await h.db.grade.count({ where: { submissionId: id } })).toBe(0);
  });

  it("a released run is not claimable before its backoff has passed", async () => {
    const id = await newSubmission();
    const a = (await claim(h.db, { submissionId: id, run: 1 }, "a", 60_000))!;
    expect(await release(h.db, a, "a", "redis away", 60_000)).toBe(true);
    expect(await claim(h.db, a, "b", 60_000)).toBeNull();
    expect((await claimableAt(h.db, a))!.getTime()).toBeGreaterThan(Date.now() + 50_000);
    await h.db.submission.update({ where: { id }, data: { availableAt: new Date(Date.now() - 1) } });
    expect(await claim(h.db, a, "b", 60_000)).not.toBeNull();
  });

  it("a release without the holder's token frees only a lease that has passed", async () => {
    const id = await newSubmission();
    const a = (await claim(h.db, { submissionId: id, run: 1 }, "a", 60_000))!;
    expect(await release(h.db, a, null, "stalled", 0)).toBe(false);
    await h.db.submission.update({ where: { id }, data: { leaseUntil: new Date(Date.now() - 1) } });
    expect(await release(h.db, a, null, "stalled", 0)).toBe(true);
    expect((await h.db.submission.findUniqueOrThrow({ where: { id } })).status).toBe("queued");
  });
});

describe("a worker's writes in batches (coalescedRunWrites): each run keeps its own precondition", () => {
  const ref = (submissionId: string) => ({ submissionId, run: 1 });

  it("claims: a free run is taken, a held one is not, and one run asked twice in a batch goes to one of the two", async () => {
    const [free, held, twice] = [await newSubmission(), await newSubmission(), await newSubmission()];
    await claim(h.db, ref(held), "other", 60_000);
    const w = coalescedRunWrites(h.db, 16);
    // The first call goes alone; the four that arrive while it is in flight share the next statement.
    const [first, ...rest] = await Promise.all([
      w.claim({ ...ref(await newSubmission()), holder: "x0", leaseMs: 60_000 }),
      w.claim({ ...ref(free), holder: "x1", leaseMs: 60_000 }),
      w.claim({ ...ref(held), holder: "x2", leaseMs: 60_000 }),
      w.claim({ ...ref(twice), holder: "x3", leaseMs: 60_000 }),
      w.claim({ ...ref(twice), holder: "x4", leaseMs: 60_000 }),
    ]);
    expect(first).toMatchObject({ holder: "x0", claims: 1 });
    expect(rest[0]).toMatchObject({ submissionId: free, holder: "x1", claims: 1, submission: { problemId: template.problemId } });
    expect(rest[1]).toBeNull();
    expect(rest.slice(2).filter(Boolean)).toHaveLength(1);
    const row = await h.db.submission.findUniqueOrThrow({ where: { id: twice } });
    expect(row.claimedBy).toBe(rest.slice(2).find(Boolean)!.holder);
  });

  it("finishes: a lost lease writes nothing while the rest of its batch is written; a failing one fails alone", async () => {
    const ids = [await newSubmission(), await newSubmission(), await newSubmission(), await newSubmission()];
    const leases = await Promise.all(ids.map((id, i) => claim(h.db, ref(id), `f${i}`, 60_000)));
    await supersede(h.db, ids[1]!); // its lease is void
    // A grade of this run already there: its finish violates the unique key, and with it the whole batch's statement.
    const { score, rawScore, maxScore, problemId, graderType, graderVersion, durationMs } = gradeData();
    const grade = { score, rawScore, maxScore, problemId, graderType, graderVersion, durationMs, feedback: {} };
    await h.db.grade.create({ data: { ...grade, submissionId: ids[2]!, run: 1, status: "graded" } });
    const w = coalescedRunWrites(h.db, 16);
    const out = await Promise.allSettled(leases.map((l) => w.finish({ lease: l!, result: result("graded"), grade: gradeData() })));
    expect(out.map((o) => o.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
    expect(out.map((o) => (o.status === "fulfilled" ? o.value : "error"))).toEqual([
      { lmsLinked: false },
      null,
      "error",
      { lmsLinked: false },
    ]);
    const rows = await h.db.submission.findMany({ where: { id: { in: ids } }, include: { grades: true } });
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(ids.map((id) => byId.get(id)!.status)).toEqual(["graded", "queued", "running", "graded"]);
    expect(ids.map((id) => byId.get(id)!.grades.length)).toEqual([1, 0, 1, 1]);
  });
});

// ---- the property: random interleavings of claim, renew, finish, crash, expiry, release, regrade, give-up ----

const SUBS = 3;
const WORKERS = 4;
const worker = fc.integer({ min: 0, max: WORKERS - 1 });
const sub = fc.integer({ min: 0, max: SUBS - 1 });
const step = fc.oneof(
  fc.record({ t: fc.constant("claim" as const), sub, workers: fc.uniqueArray(worker, { minLength: 1, maxLength: WORKERS }) }),
  fc.record({ t: fc.constant("renew" as const), w: worker }),
  fc.record({ t: fc.constant("finish" as const), w: worker, outcome: fc.constantFrom<Outcome>("graded", "rejected", "failed") }),
  fc.record({ t: fc.constant("release" as const), w: worker, backoffMs: fc.constantFrom(0, 60_000) }),
  fc.record({ t: fc.constant("giveUp" as const), w: worker }),
  fc.record({ t: fc.constant("crash" as const), w: worker }),
  fc.record({ t: fc.constant("expire" as const), sub }),
  fc.record({ t: fc.constant("backoffPasses" as const), sub }),
  fc.record({ t: fc.constant("regrade" as const), sub }),
);
type Step = typeof step extends fc.Arbitrary<infer S> ? S : never;

interface SubModel {
  id: string;
  run: number;
  status: State;
  holder: string | null;
  expired: boolean;
  backingOff: boolean;
  /** Runs finished by their lease holder (graded/rejected/failed with a Grade). */
  finished: Set<number>;
  /** Runs a regrade replaced before they finished: none of them may ever get a grade. */
  superseded: Set<number>;
}

class Rollback extends Error {}

/** Would a fresh worker get this run now? Asked inside a transaction that is rolled back, so nothing changes. */
async function claimableNow(id: string, run: number): Promise<boolean> {
  let got = false;
  await h.db
    .$transaction(async (tx) => {
      got = (await claim(tx, { submissionId: id, run }, "probe", 1000)) !== null;
      throw new Rollback();
    })
    .catch((e: unknown) => {
      if (!(e instanceof Rollback)) throw e;
    });
  return got;
}

async function checkInvariants(subs: SubModel[]) {
  for (const m of subs) {
    const row = await h.db.submission.findUniqueOrThrow({ where: { id: m.id }, include: { grades: true } });
    expect({ status: row.status, run: row.gradingRun, holder: row.claimedBy }).toEqual({ status: m.status, run: m.run, holder: m.holder });
    const current = row.grades.filter((g) => g.run === row.gradingRun);
    // At most one current grade, and it is the newest run's: none from a run later than the submission's.
    expect(current.length).toBeLessThanOrEqual(1);
    expect(row.grades.every((g) => g.run <= row.gradingRun)).toBe(true);
    // Exactly once per run: a grade exists for each finished run and for no other; none from a superseded run.
    expect(new Set(row.grades.map((g) => g.run))).toEqual(m.finished);
    expect(row.grades.filter((g) => m.superseded.has(g.run))).toEqual([]);
    if (row.status === "graded" || row.status === "rejected") expect(current).toHaveLength(1);
    if (row.status === "queued" || row.status === "running") expect(current).toHaveLength(0);
    if (row.status === "running") {
      expect(row.claimedBy).not.toBeNull();
      expect(row.leaseUntil).not.toBeNull();
      // Nothing stuck: a run whose lease has passed is claimable by anyone.
      if (row.leaseUntil!.getTime() < Date.now()) expect(await claimableNow(m.id, m.run)).toBe(true);
    }
  }
}

async function apply(s: Step, subs: SubModel[], leases: (Lease | null)[], tokens: { n: number }) {
  const holds = (l: Lease | null) => {
    const m = l && subs.find((x) => x.id === l.submissionId);
    return Boolean(m && l && m.status === "running" && m.run === l.run && m.holder === l.holder);
  };
  const modelOf = (l: Lease) => subs.find((x) => x.id === l.submissionId)!;
  switch (s.t) {
    case "claim": {
      const m = subs[s.sub]!;
      const claimable = (m.status === "queued" && !m.backingOff) || (m.status === "running" && m.expired);
      const holders = s.workers.map((wk) => `w${wk}:${tokens.n++}`);
      // Through a worker's coalesced writes: racing claims of one run share a statement, which must still pick one.
      const got = await Promise.all(holders.map((holder) => coalesced.claim({ submissionId: m.id, run: m.run, holder, leaseMs: 60_000 })));
      const winners = got.filter((g) => g !== null);
      expect(winners).toHaveLength(claimable ? 1 : 0); // never two: the second claim fails while the lease lives
      if (winners[0]) {
        Object.assign(m, { status: "running", holder: winners[0].holder, expired: false, backingOff: false });
        leases[s.workers[got.indexOf(winners[0])]!] = winners[0];
      }
      return;
    }
    case "renew": {
      const l = leases[s.w];
      if (!l) return;
      const expected = holds(l);
      expect(await renew(h.db, l, 60_000)).toBe(expected);
      if (expected) modelOf(l).expired = false;
      return;
    }
    case "finish": {
      const l = leases[s.w];
      if (!l) return;
      const expected = holds(l);
      expect(Boolean(await finish(h.db, l, result(s.outcome), gradeData()))).toBe(expected);
      if (expected) {
        const m = modelOf(l);
        Object.assign(m, { status: s.outcome, holder: null, expired: false });
        m.finished.add(l.run);
      }
      leases[s.w] = null;
      return;
    }
    case "release": {
      const l = leases[s.w];
      if (!l) return;
      const expected = holds(l);
      expect(await release(h.db, l, l.holder, "infrastructure", s.backoffMs)).toBe(expected);
      if (expected) Object.assign(modelOf(l), { status: "queued", holder: null, expired: false, backingOff: s.backoffMs > 0 });
      leases[s.w] = null;
      return;
    }
    case "giveUp": {
      const l = leases[s.w];
      if (!l) return;
      const expected = holds(l);
      expect(await fail(h.db, l, l.holder, "gave up", "GRADING_FAILED")).toBe(expected);
      if (expected) Object.assign(modelOf(l), { status: "failed", holder: null, expired: false });
      leases[s.w] = null;
      return;
    }
    case "crash": // the worker stops renewing and never comes back; its lease lives on until it passes
      leases[s.w] = null;
      return;
    case "expire": {
      const m = subs[s.sub]!;
      await h.db.submission.updateMany({ where: { id: m.id, status: "running" }, data: { leaseUntil: new Date(Date.now() - 1000) } });
      if (m.status === "running") m.expired = true;
      return;
    }
    case "backoffPasses": {
      const m = subs[s.sub]!;
      await h.db.submission.updateMany({ where: { id: m.id, status: "queued" }, data: { availableAt: new Date(Date.now() - 1000) } });
      m.backingOff = false;
      return;
    }
    case "regrade": {
      const m = subs[s.sub]!;
      const r = await supersede(h.db, m.id);
      expect(r).toEqual({ run: m.run + 1, status: "queued" });
      if (!m.finished.has(m.run)) m.superseded.add(m.run);
      Object.assign(m, { run: m.run + 1, status: "queued", holder: null, expired: false, backingOff: false });
      return;
    }
  }
}

describe("the state machine under random interleavings (real Postgres)", () => {
  it("keeps one current grade, never grades a superseded run, finishes each run once, and leaves nothing stuck", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 30 }), async (steps) => {
        const subs: SubModel[] = [];
        for (let i = 0; i < SUBS; i++)
          subs.push({
            id: await newSubmission(),
            run: 1,
            status: "queued",
            holder: null,
            expired: false,
            backingOff: false,
            finished: new Set(),
            superseded: new Set(),
          });
        const leases: (Lease | null)[] = Array(WORKERS).fill(null);
        const tokens = { n: 0 };
        for (const s of steps) {
          await apply(s, subs, leases, tokens);
          await checkInvariants(subs);
        }
      }),
      { numRuns: 40 },
    );
  }, 120_000);
});
