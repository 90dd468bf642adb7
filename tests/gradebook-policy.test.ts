/**
 * The score-of-record rules as pure functions: exact numbers for each rule, and properties over random
 * assignments and submissions (best is at least every counted score; a later extension never lowers a score).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  lateStepsSchema,
  parseLateSteps,
  problemRecord,
  studentPolicy,
  totalOf,
  usesAttempt,
  windowAt,
  type AssignmentPolicy,
  type ExtensionFacts,
  type SubmissionFacts,
} from "../src/services/gradebook/policy.ts";

const H = 3_600_000;
const DUE = new Date("2026-12-10T17:00:00Z");
const at = (hours: number) => new Date(DUE.getTime() + hours * H);

const base: AssignmentPolicy = {
  opensAt: at(-240),
  dueAt: DUE,
  lateUntil: at(96),
  latePenaltyPerDay: 0.25,
  lateSteps: null,
  maxAttempts: 3,
  scorePolicy: "best",
  timeLimitMinutes: null,
  countPrecheckRejections: false,
  countRunRejections: true,
};
const noExt = (a: AssignmentPolicy = base) => studentPolicy(a, null, null);
const factor = (a: AssignmentPolicy, hoursLate: number, ext: ExtensionFacts | null = null) => {
  const w = windowAt(studentPolicy(a, ext, null), at(hoursLate));
  return w.open ? w.lateFactor : w.reason;
};

let n = 0;
const sub = (hours: number, rawScore: number | null, extra: Partial<SubmissionFacts> = {}): SubmissionFacts => ({
  id: `s${++n}`,
  attempt: n,
  createdAt: at(hours),
  status: rawScore === null ? "queued" : "graded",
  lastErrorCode: null,
  rawScore,
  maxScore: 2,
  override: null,
  ...extra,
});
const problem = { slug: "p", points: 2 };

describe("windows and late factors", () => {
  it("per started day late: 25 % a day, closed past lateUntil, not open before opensAt", () => {
    expect(factor(base, 0)).toBe(1);
    expect(factor(base, 0.001)).toBe(0.75);
    expect(factor(base, 24)).toBe(0.75);
    expect(factor(base, 24.001)).toBe(0.5);
    expect(factor(base, 72.5)).toBe(0);
    expect(factor(base, 96)).toBe(0);
    expect(factor(base, 96.001)).toBe("ASSIGNMENT_CLOSED");
    expect(factor(base, -241)).toBe("ASSIGNMENT_NOT_OPEN");
    expect(factor({ ...base, lateUntil: null }, 0.001)).toBe("ASSIGNMENT_CLOSED");
    expect(factor({ ...base, dueAt: null, lateUntil: null }, 10_000)).toBe(1);
  });

  it("a step list replaces the per-day rate: the first step the lateness is within, 0 past the last", () => {
    const steps = {
      ...base,
      latePenaltyPerDay: 0,
      lateSteps: [
        { hoursLate: 2, factor: 0.9 },
        { hoursLate: 24, factor: 0.5 },
      ],
    };
    expect(factor(steps, 1)).toBe(0.9);
    expect(factor(steps, 2)).toBe(0.9);
    expect(factor(steps, 2.01)).toBe(0.5);
    expect(factor(steps, 24)).toBe(0.5);
    expect(factor(steps, 25)).toBe(0);
  });

  it("step lists must ascend in hours and never give a later submission more", () => {
    expect(
      lateStepsSchema.safeParse([
        { hoursLate: 2, factor: 0.9 },
        { hoursLate: 1, factor: 0.5 },
      ]).success,
    ).toBe(false);
    expect(
      lateStepsSchema.safeParse([
        { hoursLate: 1, factor: 0.5 },
        { hoursLate: 2, factor: 0.9 },
      ]).success,
    ).toBe(false);
    expect(lateStepsSchema.safeParse([]).success).toBe(false);
    expect(parseLateSteps([{ hoursLate: 1, factor: 2 }])).toBeNull();
    expect(parseLateSteps(null)).toBeNull();
    expect(parseLateSteps([{ hoursLate: 1, factor: 0.5 }])).toEqual([{ hoursLate: 1, factor: 0.5 }]);
  });

  it("an extension moves the dates (the late limit with a later due date) and adds attempts", () => {
    const ext: ExtensionFacts = { dueAt: at(48), lateUntil: null, extraAttempts: 2, extraMinutes: 0 };
    expect(factor(base, 47, ext)).toBe(1);
    expect(factor(base, 49, ext)).toBe(0.75);
    expect(factor(base, 97, ext)).toBe("ASSIGNMENT_CLOSED");
    const far: ExtensionFacts = { dueAt: at(200), lateUntil: null, extraAttempts: 0, extraMinutes: 0 };
    expect(studentPolicy(base, far, null).lateUntil).toEqual(at(200));
    expect(studentPolicy(base, ext, null).maxAttempts).toBe(5);
    expect(studentPolicy({ ...base, maxAttempts: null }, ext, null).maxAttempts).toBeNull();
  });

  it("an exam window runs from the first view for the time limit plus extra minutes", () => {
    const timed = { ...base, timeLimitMinutes: 60 };
    const start = at(-10);
    const p = studentPolicy(timed, null, start);
    expect(p.examEndsAt).toEqual(at(-9));
    expect(windowAt(p, at(-9.01))).toMatchObject({ open: true, lateFactor: 1 });
    expect(windowAt(p, at(-8.99))).toMatchObject({ open: false, reason: "EXAM_TIME_OVER" });
    const longer = studentPolicy(timed, { dueAt: null, lateUntil: null, extraAttempts: 0, extraMinutes: 30 }, start);
    expect(longer.examEndsAt).toEqual(at(-8.5));
    expect(studentPolicy(timed, null, null).examEndsAt).toBeNull();
  });
});

describe("attempts", () => {
  const cases: [SubmissionFacts["status"], string | null, boolean, boolean, boolean][] = [
    // status, code, countPrecheck, countRun → uses an attempt
    ["failed", "GRADER_TIMEOUT", true, true, false],
    ["queued", null, false, false, true],
    ["running", null, false, false, true],
    ["graded", null, false, false, true],
    ["rejected", null, false, true, false],
    ["rejected", null, true, true, true],
    ["rejected", "MODEL_TIMEOUT", false, true, true],
    ["rejected", "MODEL_CRASHED", false, false, false],
    ["rejected", "MODEL_REJECTED", false, true, false],
  ];
  it.each(cases)("%s %s (precheck %s, run %s) → %s", (status, code, countPrecheckRejections, countRunRejections, uses) => {
    expect(usesAttempt({ ...base, countPrecheckRejections, countRunRejections }, { status, lastErrorCode: code })).toBe(uses);
  });
});

describe("score of record", () => {
  it("best: the highest after late factors (earliest on a tie); last: the newest with a result", () => {
    const subs = [sub(-5, 1), sub(-4, 1), sub(10, 2), sub(30, null)];
    const best = problemRecord(noExt(), problem, subs);
    // 2 × 0.75 = 1.5 beats the on-time 1s
    expect(best).toMatchObject({ score: 1.5, submissionId: subs[2]!.id, rawScore: 2, lateFactor: 0.75, attemptsUsed: 4, pending: 1 });
    const tie = problemRecord(noExt(), problem, [sub(-5, 1), sub(-4, 1)]);
    expect(tie.attempt).toBe(n - 1);
    const last = problemRecord(noExt({ ...base, scorePolicy: "last" }), problem, subs);
    expect(last).toMatchObject({ score: 1.5, submissionId: subs[2]!.id });
    const lastLow = problemRecord(noExt({ ...base, scorePolicy: "last" }), problem, [sub(-5, 2), sub(-4, 0.5)]);
    expect(lastLow.score).toBe(0.5);
  });

  it("last: a rejection that used no attempt does not replace the answer before it (unless the assignment counts it)", () => {
    const last = { ...base, scorePolicy: "last" as const };
    const subs = () => [sub(-5, 2), sub(-4, 0, { status: "rejected" }), sub(-3, 0, { status: "failed", lastErrorCode: "GRADING_FAILED" })];
    expect(problemRecord(noExt(last), problem, subs())).toMatchObject({ score: 2, attemptsUsed: 1 });
    expect(problemRecord(noExt({ ...last, countPrecheckRejections: true }), problem, subs())).toMatchObject({ score: 0, attemptsUsed: 2 });
    const ran = [sub(-5, 2), sub(-4, 0, { status: "rejected", lastErrorCode: "MODEL_TIMEOUT" })];
    expect(problemRecord(noExt(last), problem, ran).score).toBe(0);
  });

  it("an override replaces the automatic score of its submission and names who gave it", () => {
    const override = { score: 1.75, comment: "partial credit", byId: "ta", at: at(50) };
    const r = problemRecord(noExt(), problem, [sub(-5, 1), sub(-4, 0, { override })]);
    expect(r).toMatchObject({ score: 1.75, override, rawScore: 0, lateFactor: 1 });
  });

  it("nothing counted yet: null score; the total counts it 0", () => {
    const none = problemRecord(noExt(), problem, [sub(-1, null)]);
    expect(none).toMatchObject({ score: null, submissionId: null, pending: 1, attemptsUsed: 1 });
    const one = problemRecord(noExt(), { slug: "q", points: 3 }, [sub(-1, 2.5)]);
    expect(totalOf([none, one])).toEqual({ score: 2.5, maxScore: 5 });
  });
});

/** Random assignments (per-day or steps) and graded submissions around the due date. */
const policyArb = fc.record({
  lateUntilH: fc.option(fc.integer({ min: 0, max: 120 }), { nil: null }),
  perDay: fc.double({ min: 0, max: 1, noNaN: true }),
  steps: fc.option(
    fc.uniqueArray(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 4 }).chain((hours) =>
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: hours.length, maxLength: hours.length }).map((fs) => {
        const factors = [...fs].sort((x, y) => y - x);
        return [...hours].sort((x, y) => x - y).map((h, i) => ({ hoursLate: h, factor: factors[i]! }));
      }),
    ),
    { nil: null },
  ),
  scorePolicy: fc.constantFrom("best" as const, "last" as const),
});
const subsArb = fc.array(fc.record({ h: fc.integer({ min: -48, max: 150 }), raw: fc.double({ min: 0, max: 2, noNaN: true }) }), {
  minLength: 1,
  maxLength: 8,
});
type PolicyGen = typeof policyArb extends fc.Arbitrary<infer T> ? T : never;
const toPolicy = (g: PolicyGen): AssignmentPolicy => ({
  ...base,
  lateUntil: g.lateUntilH === null ? null : at(g.lateUntilH),
  latePenaltyPerDay: g.steps ? 0 : g.perDay,
  lateSteps: g.steps,
  scorePolicy: g.scorePolicy,
});
const toSubs = (xs: { h: number; raw: number }[]) => xs.map((x, i) => ({ ...sub(x.h, x.raw), attempt: i + 1 }));

describe("properties", () => {
  it("best is at least every submission's own worth, and within [0, points]", () => {
    fc.assert(
      fc.property(policyArb, subsArb, (g, xs) => {
        const p = noExt({ ...toPolicy(g), scorePolicy: "best" });
        const subs = toSubs(xs);
        const r = problemRecord(p, problem, subs);
        for (const s of subs) {
          const w = windowAt(p, s.createdAt);
          const f = w.open ? w.lateFactor : 0;
          expect(r.score!).toBeGreaterThanOrEqual(s.rawScore! * f - 1e-6);
        }
        expect(r.score!).toBeGreaterThanOrEqual(0);
        expect(r.score!).toBeLessThanOrEqual(2);
      }),
    );
  });

  it("a later extension (dates no earlier, extra minutes) never lowers a score of record", () => {
    fc.assert(
      fc.property(
        policyArb,
        subsArb,
        fc.integer({ min: 0, max: 100 }),
        fc.option(fc.integer({ min: 0, max: 100 }), { nil: null }),
        (g, xs, moreDue, moreLate) => {
          const a = toPolicy(g);
          const subs = toSubs(xs);
          const before = problemRecord(studentPolicy(a, null, null), problem, subs).score ?? 0;
          const lateUntil = moreLate === null || !a.lateUntil ? null : new Date(a.lateUntil.getTime() + moreLate * H);
          const ext = { dueAt: at(moreDue), lateUntil, extraAttempts: 0, extraMinutes: 0 };
          const after = problemRecord(studentPolicy(a, ext, null), problem, subs).score ?? 0;
          expect(after).toBeGreaterThanOrEqual(before - 1e-9);
        },
      ),
    );
  });
});
