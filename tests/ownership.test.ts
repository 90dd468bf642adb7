import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, createWorld, waitForGrade, type Harness, type World } from "./helpers/harness.ts";
import { assign, enroll, mkCourse, mkUser, type Person } from "./helpers/people.ts";
import { choiceBundle, renamedBundle, uploadBundle } from "./helpers/set-bundles.ts";

const MIDTERM = "problems/dl-midterm-review";
const ZOO = "tests/fixtures/sets/grader-zoo";
const VAE_KEY = ["stochastic-encoder", "two-term-loss", "reparameterisation", "generate-from-prior", "elbo"];

let h: Harness;
let a: World; // our course
let profB: Person; // instructor of another course
let ourAssignment: string;
let midtermAssignment: string;

/** Every table an upload writes to: a refused upload must leave each count as it was. */
const counts = async () => ({
  blobs: await h.db.blob.count(),
  sets: await h.db.problemSet.count(),
  revisions: await h.db.problemSetRevision.count(),
  problems: await h.db.problem.count(),
  owners: await h.db.problemSetOwner.count(),
  audit: await h.db.auditEvent.count(),
});

async function submitAndGrade(assignment: string, problem: string, selected: string[]) {
  const s = a.students[0]!;
  const res = await h.call("POST", `/v1/assignments/${assignment}/problems/${problem}/submissions`, {
    token: s.token,
    body: { answer: { selected } },
  });
  expect(res.statusCode, res.body).toBe(202);
  return waitForGrade(h, res.json().id, s.token);
}

const ownersOf = async (slug: string, token: string) =>
  (await h.call("GET", `/v1/problem-sets/${slug}/owners`, { token })).json().map((o: { userId: string }) => o.userId);

beforeAll(async () => {
  h = await createHarness("ownership");
  await h.loadSet(MIDTERM);
  await h.loadSet(ZOO);
  h.startWorker();
  a = await createWorld(h, { students: 1, course: "ours" });
  const courseB = await mkCourse(h, a.adminToken, "theirs");
  profB = await enroll(h, a.adminToken, courseB, await mkUser(h, a.adminToken, "prof-b@example.org"), "instructor");
  expect((await uploadBundle(h, a.instructor.token, await choiceBundle("our-set", { correct: ["red"] }))).statusCode).toBe(201);
  ourAssignment = await assign(h, a.instructor.token, a.courseId, { problemSet: "our-set" });
  midtermAssignment = await assign(h, a.instructor.token, a.courseId, { problemSet: "dl-midterm-review" });
}, 120_000);
afterAll(() => h?.close());

describe("who may revise a set", () => {
  it("a new slug makes its uploader the only owner; sets from problems/ belong to the deployment and have none", async () => {
    const owner = await h.db.problemSet.findUniqueOrThrow({ where: { slug: "our-set" }, include: { owners: true } });
    expect(owner).toMatchObject({ deployment: false, owners: [{ userId: a.instructor.id }] });
    const midterm = await h.db.problemSet.findUniqueOrThrow({ where: { slug: "dl-midterm-review" }, include: { owners: true } });
    expect(midterm).toMatchObject({ deployment: true, owners: [] });
  });

  it("another course's instructor cannot overwrite our set: 403, nothing written, and our next right answer scores full", async () => {
    const before = await counts();
    const res = await uploadBundle(h, profB.token, await choiceBundle("our-set", { correct: ["dog"] }));
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe("PROBLEM_SET_OWNED");
    expect(res.json().error.message).toMatch(/new slug/);
    expect(await counts()).toEqual(before);
    expect(await submitAndGrade(ourAssignment, "pick", ["red"])).toMatchObject({ status: "graded", score: 2, maxScore: 2 });
  });

  it("nobody but an admin revises the deployment's dl-midterm-review, not even an instructor using it", async () => {
    const flipped = await choiceBundle("dl-midterm-review", { problem: "p3-ae-vs-vae", correct: ["deterministic-encoder"] });
    for (const who of [profB, a.instructor]) {
      const before = await counts();
      const res = await uploadBundle(h, who.token, flipped);
      expect(res.statusCode).toBe(403);
      expect(res.json().error).toMatchObject({ code: "PROBLEM_SET_OWNED", message: expect.stringMatching(/deployment.*new slug/s) });
      expect(await counts()).toEqual(before);
    }
    const graded = await submitAndGrade(midtermAssignment, "p3-ae-vs-vae", VAE_KEY);
    expect(graded).toMatchObject({ status: "graded", score: graded.maxScore });
    expect(graded.maxScore).toBeGreaterThan(0);
  });

  it("an instructor's own variant of a catalog set goes under a new slug and is theirs", async () => {
    const res = await uploadBundle(h, profB.token, await renamedBundle(ZOO, "grader-zoo-b"));
    expect(res.statusCode, res.body).toBe(201);
    expect(await ownersOf("grader-zoo-b", profB.token)).toEqual([profB.id]);
  });

  it("an admin revises a deployment set by upload, and it stays the deployment's", async () => {
    const res = await uploadBundle(h, a.adminToken, await choiceBundle("grader-zoo", { correct: ["red"] }));
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ revision: 2, created: true });
    expect(await h.db.problemSet.findUniqueOrThrow({ where: { slug: "grader-zoo" } })).toMatchObject({ deployment: true });
  });

  it("two instructors uploading one new slug at once: exactly one owns it, the other is refused, never both write", async () => {
    for (let round = 0; round < 6; round++) {
      const slug = `race-${round}`;
      const bundles = [await choiceBundle(slug, { correct: ["red"] }), await choiceBundle(slug, { correct: ["dog"] })];
      const people = [a.instructor, profB];
      const results = await Promise.all(people.map((p, i) => uploadBundle(h, p.token, bundles[i]!)));
      const statuses = results.map((r) => r.statusCode);
      expect(
        statuses.filter((s) => s === 201),
        `${slug}: ${statuses}`,
      ).toHaveLength(1);
      const winner = people[statuses.indexOf(201)]!;
      const loserIndex = statuses.findIndex((s) => s !== 201);
      const loser = results[loserIndex]!;
      expect(["PROBLEM_SET_OWNED", "CONCURRENT_UPLOAD"]).toContain(loser.json().error.code);
      // A retry after a 409 meets the winner's ownership.
      const retry = await uploadBundle(h, people[loserIndex]!.token, bundles[loserIndex]!);
      expect(retry.json().error.code).toBe("PROBLEM_SET_OWNED");
      const set = await h.db.problemSet.findUniqueOrThrow({ where: { slug }, include: { owners: true, revisions: true } });
      expect(set.owners.map((o) => o.userId)).toEqual([winner.id]);
      expect(set.revisions.map((r) => [r.revision, r.uploadedById])).toEqual([[1, winner.id]]);
    }
  });
});

describe("co-owners", () => {
  it("an owner adds a co-owner, who may then revise; owners see the list, others 403 or 404", async () => {
    const added = await h.call("PUT", `/v1/problem-sets/our-set/owners/${profB.id}`, { token: a.instructor.token });
    expect(added.statusCode, added.body).toBe(200);
    expect(added.json()).toMatchObject({ userId: profB.id, addedById: a.instructor.id, email: "prof-b@example.org" });
    // Idempotent: a second PUT changes nothing and is not audited again.
    expect((await h.call("PUT", `/v1/problem-sets/our-set/owners/${profB.id}`, { token: a.instructor.token })).statusCode).toBe(200);
    expect(await h.db.auditEvent.count({ where: { action: "problem_set.owner.add" } })).toBe(1);
    expect(await ownersOf("our-set", profB.token)).toEqual([a.instructor.id, profB.id]);

    const revised = await uploadBundle(h, profB.token, await choiceBundle("our-set", { correct: ["red"], title: "Ours, edited by B" }));
    expect(revised.statusCode, revised.body).toBe(201);
    expect(revised.json()).toMatchObject({ revision: 2, title: "Ours, edited by B" });

    // The student reads the set through the assignment but does not own it.
    expect((await h.call("GET", "/v1/problem-sets/our-set/owners", { token: a.students[0]!.token })).statusCode).toBe(403);
    const stranger = await mkUser(h, a.adminToken, "stranger@example.org");
    expect((await h.call("GET", "/v1/problem-sets/our-set/owners", { token: stranger.token })).statusCode).toBe(404);
    const unknownUser = await h.call("PUT", "/v1/problem-sets/our-set/owners/00000000-0000-4000-8000-000000000000", {
      token: a.instructor.token,
    });
    expect(unknownUser.statusCode).toBe(404);
  });

  it("owners are removed one by one, never the last (409); removed owners can no longer revise", async () => {
    const removed = await h.call("DELETE", `/v1/problem-sets/our-set/owners/${a.instructor.id}`, { token: profB.token });
    expect(removed.statusCode, removed.body).toBe(204);
    expect(await h.db.auditEvent.count({ where: { action: "problem_set.owner.remove" } })).toBe(1);
    const refused = await uploadBundle(h, a.instructor.token, await choiceBundle("our-set", { correct: ["dog"] }));
    expect(refused.json().error.code).toBe("PROBLEM_SET_OWNED");

    const before = await counts();
    const last = await h.call("DELETE", `/v1/problem-sets/our-set/owners/${profB.id}`, { token: profB.token });
    expect(last.statusCode).toBe(409);
    expect(last.json().error.code).toBe("LAST_OWNER");
    const notOwner = await h.call("DELETE", `/v1/problem-sets/our-set/owners/${a.instructor.id}`, { token: a.adminToken });
    expect(notOwner.statusCode).toBe(404);
    expect(await counts()).toEqual(before);
  });

  it("two owners removing each other at once leave one owner, not none", async () => {
    const slug = "pair-set";
    expect((await uploadBundle(h, a.instructor.token, await choiceBundle(slug, { correct: ["red"] }))).statusCode).toBe(201);
    await h.call("PUT", `/v1/problem-sets/${slug}/owners/${profB.id}`, { token: a.instructor.token });
    const [x, y] = await Promise.all([
      h.call("DELETE", `/v1/problem-sets/${slug}/owners/${profB.id}`, { token: a.instructor.token }),
      h.call("DELETE", `/v1/problem-sets/${slug}/owners/${a.instructor.id}`, { token: profB.token }),
    ]);
    // The loser either finds it is the last owner (409) or, when the winner committed before its own
    // check, is no longer an owner and may no longer read the set (404): never two 204s.
    const codes = [x.statusCode, y.statusCode].sort();
    expect(codes[0]).toBe(204);
    expect([404, 409]).toContain(codes[1]);
    expect(await h.db.problemSetOwner.count({ where: { problemSet: { slug } } })).toBe(1);
  });

  it("deployment sets take no owners, even from an admin", async () => {
    const res = await h.call("PUT", `/v1/problem-sets/dl-midterm-review/owners/${profB.id}`, { token: a.adminToken });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe("DEPLOYMENT_SET");
  });
});
