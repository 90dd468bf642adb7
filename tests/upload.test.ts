import { appendFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tarGzOf, multipart } from "./helpers/bundles.ts";
import { createAssignment, createHarness, createWorld, waitForGrade, type Harness, type World } from "./helpers/harness.ts";

const ZOO = "tests/fixtures/sets/grader-zoo";
let h: Harness;
let w: World;

const upload = (token: string, payload: FormData | string, headers: Record<string, string> = {}) =>
  h.app.inject({
    method: "POST",
    url: "/v1/problem-sets",
    headers: { authorization: `Bearer ${token}`, ...headers },
    payload: payload as any,
  });

beforeAll(async () => {
  h = await createHarness("upload", { BUNDLE_LIMIT_BYTES: "200000" });
  h.startWorker();
  w = await createWorld(h, { students: 1 });
});
afterAll(() => h?.close());

describe("POST /v1/problem-sets", () => {
  it("an instructor uploads a bundle; the same content again makes no new revision; a change makes revision 2", async () => {
    const first = await upload(w.instructor.token, multipart("bundle", "zoo.tar.gz", await tarGzOf(ZOO)));
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json()).toMatchObject({ slug: "grader-zoo", revision: 1, created: true });
    expect(first.json().problems).toHaveLength(7);

    const same = await upload(w.instructor.token, multipart("bundle", "zoo.tar.gz", await tarGzOf(ZOO)));
    expect(same.json()).toMatchObject({ revision: 1, created: false });

    const changed = await tarGzOf(ZOO, (dir) =>
      appendFile(path.join(dir, "set.yaml"), "description: edited\n".replace("description", "# comment")),
    );
    const second = await upload(w.instructor.token, multipart("bundle", "zoo.tar.gz", changed));
    expect(second.json()).toMatchObject({ revision: 2, created: true });
  });

  it("earlier grades keep pointing at the revision they used", async () => {
    const assignment = await createAssignment(h, w, { problemSet: "grader-zoo" });
    const s = w.students[0]!;
    const sub = (
      await h.call("POST", `/v1/assignments/${assignment}/problems/single-choice/submissions`, {
        token: s.token,
        body: { answer: { selected: ["red"] } },
      })
    ).json();
    await waitForGrade(h, sub.id, s.token);
    // The instructor changes the right answer in revision 3.
    const edited = await tarGzOf(ZOO, async (dir) =>
      writeFile(
        path.join(dir, "single-choice/problem.yaml"),
        "title: Single choice\npoints: 2\nstatement: Which is an animal?\ngrader:\n  type: choice\n  options: [{ id: red, text: Red }, { id: dog, text: Dog }]\n  correct: [dog]\n",
      ),
    );
    expect((await upload(w.instructor.token, multipart("bundle", "zoo.tar.gz", edited))).json().revision).toBe(3);
    const before = (await h.call("GET", `/v1/submissions/${sub.id}`, { token: w.instructor.token })).json();
    expect(before.grades[0]).toMatchObject({ problemRevision: 2, score: 2 });
    // An upload never moves an assignment: a regrade stays on its pinned revision; the old grade stays beside the new.
    await h.call("POST", `/v1/submissions/${sub.id}/regrade`, { token: w.instructor.token });
    await waitForGrade(h, sub.id, w.instructor.token);
    const after = (await h.call("GET", `/v1/submissions/${sub.id}`, { token: w.instructor.token })).json();
    expect(after.grades.map((g: { problemRevision: number; score: number }) => [g.problemRevision, g.score])).toEqual([
      [2, 2],
      [2, 2],
    ]);
    // A new assignment pins the latest revision, and grades against it.
    const newer = await createAssignment(h, w, { problemSet: "grader-zoo" });
    const again = (
      await h.call("POST", `/v1/assignments/${newer}/problems/single-choice/submissions`, {
        token: s.token,
        body: { answer: { selected: ["red"] } },
      })
    ).json();
    const graded = await waitForGrade(h, again.id, w.instructor.token);
    expect(graded.grades.map((g: { problemRevision: number; score: number }) => [g.problemRevision, g.score])).toEqual([[3, 0]]);
  });

  it("a bundle with errors is a 422 listing every error with its file and field, and stores nothing", async () => {
    const revisions = await h.db.problemSetRevision.count();
    const broken = await tarGzOf(ZOO, async (dir) => {
      await writeFile(
        path.join(dir, "numeric-fixed/problem.yaml"),
        "title: x\npoints: -1\nstatement: s\ngrader: { type: numeric, answer: 1, rtol: oops }\n",
      );
      await writeFile(path.join(dir, "single-choice/problem.yaml"), "title: x\npoints: 1\nstatement: s\ngrader: { type: nonsense }\n");
    });
    const res = await upload(w.instructor.token, multipart("bundle", "zoo.tar.gz", broken));
    expect(res.statusCode).toBe(422);
    const { error } = res.json();
    expect(error.code).toBe("INVALID_BUNDLE");
    const where = error.details.map((d: { file: string; path: string }) => `${d.file}#${d.path}`);
    expect(where).toEqual(
      expect.arrayContaining([
        "numeric-fixed/problem.yaml#points",
        "numeric-fixed/problem.yaml#grader.rtol",
        "single-choice/problem.yaml#grader.type",
      ]),
    );
    expect(await h.db.problemSetRevision.count()).toBe(revisions);
  });

  it("refuses students, non-multipart bodies, a missing field, non-gzip data and oversized files", async () => {
    const bundle = await tarGzOf(ZOO);
    expect((await upload(w.students[0]!.token, multipart("bundle", "zoo.tar.gz", bundle))).statusCode).toBe(403);
    expect(
      (await upload(w.instructor.token, JSON.stringify({ bundle: "x" }), { "content-type": "application/json" })).json().error.code,
    ).toBe("NOT_MULTIPART");
    expect((await upload(w.instructor.token, multipart("file", "zoo.tar.gz", bundle))).json().error.code).toBe("MISSING_BUNDLE");
    const notGzip = await upload(w.instructor.token, multipart("bundle", "zoo.zip", Buffer.from("PK\x03\x04 not a tarball")));
    expect(notGzip.statusCode).toBe(422);
    expect(notGzip.json().error.details[0].message).toMatch(/gzip/i);
    const big = await upload(w.instructor.token, multipart("bundle", "big.tar.gz", Buffer.alloc(300_000, 1)));
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe("PAYLOAD_TOO_LARGE");
  });
});
