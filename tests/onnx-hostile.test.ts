import { randomBytes, createHash } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { planSandbox } from "../src/grading/onnx/isolation.ts";
import { enqueueGrading } from "../src/grading/queue.ts";
import { multipart } from "./helpers/bundles.ts";
import { createAssignment, createHarness, createWorld, waitForGrade, type Harness, type World } from "./helpers/harness.ts";
import { PREFLIGHT_REFUSALS } from "./fixtures/onnx/hostile/refusals.ts";

const HOSTILE = "tests/fixtures/onnx/hostile";
const SECRET = `s3cr3t-${randomBytes(8).toString("hex")}`;
let h: Harness;
let w: World;
let assignmentId: string;

const bytesOf = (name: string) => readFile(`${HOSTILE}/${name}.onnx`);
const upload = async (name: string) =>
  h.app.inject({
    method: "POST",
    url: `/v1/assignments/${assignmentId}/problems/double/submissions`,
    headers: { authorization: `Bearer ${w.students[0]!.token}` },
    payload: multipart("model", `${name}.onnx`, await bytesOf(name), "application/octet-stream") as any,
  });

/** After every hostile upload, a normal one must still grade correctly: nothing was poisoned. */
async function expectBenignGrades() {
  const res = await upload("benign");
  expect(res.statusCode).toBe(202);
  expect(await waitForGrade(h, res.json().id, w.students[0]!.token, 30_000)).toMatchObject({ status: "graded", score: 1 });
}

beforeAll(async () => {
  // The file the external-data models name, where a naive worker would read it from.
  await writeFile("secret.txt", SECRET);
  h = await createHarness("onnx_hostile", { MODEL_TIMEOUT_S: "2", SANDBOX_POOL_SIZE: "2", GRADER_EXECUTION_PROVIDERS: "cpu" });
  await h.loadSet("tests/fixtures/sets/onnx-hostile");
  h.startWorker();
  w = await createWorld(h, { students: 1 });
  assignmentId = await createAssignment(h, w, { problemSet: "onnx-hostile" });
}, 60_000);
afterAll(async () => {
  await rm("secret.txt", { force: true });
  await h?.close();
});

describe("hostile uploads", () => {
  it.each(PREFLIGHT_REFUSALS)("%s is refused in the request (%s), stores nothing, and the next upload grades", async (name, reason) => {
    const before = await h.db.submission.count();
    const res = await upload(name);
    expect(res.statusCode).toBe(422);
    expect(res.json().error).toMatchObject({ code: "MODEL_REJECTED", details: { reason } });
    expect(res.body).not.toContain(SECRET);
    expect(await h.db.submission.count()).toBe(before);
    await expectBenignGrades();
  });

  it.each([
    ["endless_loop", /MODEL_TIMEOUT/],
    ["cos_bomb_input", /MODEL_OUT_OF_MEMORY|MODEL_CRASHED/],
  ])("%s passes preflight, ends `rejected` with the reason, and the worker grades the next one", async (name, reason) => {
    const res = await upload(name);
    expect(res.statusCode).toBe(202);
    const graded = await waitForGrade(h, res.json().id, w.students[0]!.token, 30_000);
    expect(graded).toMatchObject({ status: "rejected", score: 0 });
    expect(graded.feedback.summary).toMatch(reason);
    await expectBenignGrades();
  });

  it("records on the grade how the sandbox ran the model; staff see it, students do not", async () => {
    const res = await upload("benign");
    const id = res.json().id;
    await waitForGrade(h, id, w.students[0]!.token, 30_000);
    const staff = await waitForGrade(h, id, w.instructor.token);
    const isolation = staff.grades[0].isolation;
    expect(isolation).toMatchObject({ memoryCapMb: 2048, core: false, nprocs: 256, network: expect.stringMatching(/^(none|host)$/) });
    // What this host allows, decided once per process: the same facts the worker's sandbox planned with.
    const plan = planSandbox({ memoryBytes: 2048 * 2 ** 20, maxProcs: 256, user: "nobody", allowUncapped: false });
    expect(isolation).toEqual(plan.isolation);
    expect(isolation.user).toEqual(process.getuid!() === 0 ? expect.stringMatching(/^(nobody|root)$/) : userInfo().username);
    const row = await h.db.grade.findFirstOrThrow({ where: { submissionId: id } });
    expect(row.isolation).toEqual(isolation);
    const student = await waitForGrade(h, id, w.students[0]!.token);
    expect(student.grades).toBeUndefined();
  });

  it("the worker runs preflight again: an external-data model that got past the API is rejected and leaks nothing", async () => {
    const model = await bytesOf("external_initializer");
    const sha256 = createHash("sha256").update(model).digest("hex");
    const problem = await h.db.problem.findFirstOrThrow({ where: { slug: "double" } });
    await h.db.blob.create({ data: { sha256, size: model.byteLength, data: model } });
    const s = await h.db.submission.create({
      data: {
        assignmentId,
        userId: w.students[0]!.id,
        problemSlug: "double",
        problemId: problem.id,
        attempt: 1000,
        answer: { model: { sha256, size: model.byteLength } },
        modelSha256: sha256,
        seed: "written-by-another-process",
      },
    });
    await enqueueGrading(h.queue, { submissionId: s.id, run: 1 });
    const graded = await waitForGrade(h, s.id, w.instructor.token, 30_000);
    expect(graded).toMatchObject({ status: "rejected", score: 0 });
    expect(graded.feedback.summary).toMatch(/EXTERNAL_DATA/);
    expect(JSON.stringify(graded)).not.toContain(SECRET);
    await expectBenignGrades();
  });

  it("ONNX_ALLOWED_DOMAINS reaches the API's and the worker's preflight: an allowed custom domain gets to the sandbox", async () => {
    const open = await createHarness("onnx_domains", { ONNX_ALLOWED_DOMAINS: "ai.onnx, com.evil", GRADER_EXECUTION_PROVIDERS: "cpu" });
    try {
      await open.loadSet("tests/fixtures/sets/onnx-hostile");
      open.startWorker();
      const world = await createWorld(open, { students: 1, course: "domains" });
      const a = await createAssignment(open, world, { problemSet: "onnx-hostile" });
      const res = await open.app.inject({
        method: "POST",
        url: `/v1/assignments/${a}/problems/double/submissions`,
        headers: { authorization: `Bearer ${world.students[0]!.token}` },
        payload: multipart("model", "custom.onnx", await bytesOf("custom_domain"), "application/octet-stream") as any,
      });
      expect(res.statusCode).toBe(202);
      // onnxruntime knows no com.evil kernels, so the model is refused when the sandbox loads it.
      const graded = await waitForGrade(open, res.json().id, world.students[0]!.token, 30_000);
      expect(graded).toMatchObject({ status: "rejected", score: 0 });
      expect(graded.feedback.summary).toMatch(/MODEL_LOAD_FAILED/);
    } finally {
      await open.close();
    }
  });
});
