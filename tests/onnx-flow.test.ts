import { readFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { multipart } from "./helpers/bundles.ts";
import { createAssignment, createHarness, createWorld, waitForGrade, type Harness, type World } from "./helpers/harness.ts";

const MODELS = "tests/fixtures/onnx/basic";
let h: Harness;
let w: World;
let assignmentId: string;

const file = (p: string) => readFile(`${MODELS}/${p}`);
const url = (problem: string) => `/v1/assignments/${assignmentId}/problems/${problem}/submissions`;

function upload(problem: string, bytes: Buffer, token = w.students[0]!.token, field = "model") {
  return h.app.inject({
    method: "POST",
    url: url(problem),
    headers: { authorization: `Bearer ${token}` },
    payload: multipart(field, "model.onnx", bytes, "application/octet-stream") as any,
  });
}

async function grade(problem: string, model: string, token = w.students[0]!.token) {
  const res = await upload(problem, await file(model), token);
  expect(res.statusCode, res.body).toBe(202);
  return waitForGrade(h, res.json().id, token, 60_000);
}

beforeAll(async () => {
  // The real sandbox pool: every model runs in a child process; the CPU provider after CUDA's fallback.
  h = await createHarness("onnx_flow", { MODEL_MAX_BYTES: "200000", GRADER_EXECUTION_PROVIDERS: "cuda,cpu", SANDBOX_POOL_SIZE: "2" });
  await h.loadSet("tests/fixtures/sets/onnx-basic");
  h.startWorker();
  w = await createWorld(h, { students: 2 });
  assignmentId = await createAssignment(h, w, { problemSet: "onnx-basic" });
}, 120_000);
afterAll(() => h?.close());

describe("ONNX submissions through the API, queue and sandboxed workers", () => {
  it("onnx-function: right, wrong and a signature mismatch refused in the request", async () => {
    expect(await grade("average-colour", "function/average_colour_ok.onnx")).toMatchObject({ status: "graded", score: 4, maxScore: 4 });
    expect(await grade("average-colour", "function/average_colour_wrong_axis.onnx")).toMatchObject({ status: "graded", score: 0 });
    // Declared shapes that cannot fit are refused in the request, with what to change.
    const nhwc = await upload("average-colour", await file("function/average_colour_nhwc.onnx"));
    expect(nhwc.statusCode).toBe(422);
    expect(nhwc.json().error).toMatchObject({ code: "MODEL_REJECTED", details: { reason: "OUTPUT_MISMATCH" } });
    expect(nhwc.json().error.message).toMatch(/expects 3/);
    const before = await h.db.submission.count();
    const refused = await upload("average-colour", await file("function/average_colour_bad_name.onnx"));
    expect(refused.statusCode).toBe(422);
    expect(refused.json().error).toMatchObject({ code: "MODEL_REJECTED", details: { reason: "INPUT_MISMATCH" } });
    expect(await h.db.submission.count()).toBe(before);
  });

  it("onnx-classifier: full, partial (threshold) and no credit", async () => {
    expect(await grade("digits-classifier", "classifier/trained.onnx")).toMatchObject({ status: "graded", score: 10 });
    expect(await grade("digits-classifier", "classifier/undertrained.onnx")).toMatchObject({ status: "graded", score: 2.5 });
    expect(await grade("digits-classifier", "classifier/random.onnx")).toMatchObject({ status: "graded", score: 0 });
  });

  it("onnx-encoder-objective: near-ISTA codes score, a one-step encoder does not", async () => {
    // Each student's signals come from their own seed, so a near-ISTA encoder scores near (not always exactly) full marks.
    const good = await grade("sparse-encoder", "encoder/ista50.onnx");
    expect(good.status).toBe("graded");
    expect(good.score).toBeGreaterThan(4.5);
    expect(await grade("sparse-encoder", "encoder/one_step.onnx")).toMatchObject({ status: "graded", score: 0 });
  });

  it("staff see how a model grade can be reproduced; students do not", async () => {
    const bytes = await file("function/vae_kl_ok.onnx");
    const sha = createHash("sha256").update(bytes).digest("hex");
    const graded = await grade("vae-kl", "function/vae_kl_ok.onnx");
    expect(graded.grades).toBeUndefined();
    const staff = (await h.call("GET", `/v1/submissions/${graded.id}`, { token: w.instructor.token })).json();
    expect(staff.modelSha256).toBe(sha);
    expect(staff.grades[0]).toMatchObject({
      executionProvider: "cpu",
      ortVersion: expect.stringMatching(/^1\.\d+\.\d+$/),
      inputSeed: expect.any(String),
    });
    expect(staff.grades[0].hashes.model).toBe(sha);
    expect(Object.keys(staff.grades[0].hashes.assets)).toEqual([]);
    const cls = (
      await h.call("GET", `/v1/assignments/${assignmentId}/submissions?problem=digits-classifier`, { token: w.instructor.token })
    ).json();
    expect(Object.keys(cls[0].grades[0].hashes.assets).sort()).toEqual(["test_x.npy", "test_y.npy"]);
  });

  it("identical uploads are stored once", async () => {
    const blobs = await h.db.blob.count();
    await grade("vae-kl", "function/vae_kl_ok.onnx", w.students[1]!.token);
    expect(await h.db.blob.count()).toBe(blobs);
  });

  it("the answer format tells students the signature and budget, nothing private", async () => {
    const set = (await h.call("GET", "/v1/problem-sets/onnx-basic", { token: w.students[0]!.token })).json();
    const p = set.problems.find((x: { slug: string }) => x.slug === "digits-classifier");
    expect(p.answerFormat).toMatchObject({
      inputs: [{ name: "x", dtype: "float32", shape: ["N", 1, 8, 8] }],
      maxBytes: expect.any(Number),
    });
    expect(JSON.stringify(set)).not.toMatch(/test_x\.npy|reference\.onnx/);
  });

  it("wrong kinds of body: JSON for a model problem, a file for a JSON problem, a missing field, an oversized file", async () => {
    const json = await h.call("POST", url("vae-kl"), { token: w.students[0]!.token, body: { answer: { value: 1 } } });
    expect(json.statusCode).toBe(415);
    expect(json.json().error.code).toBe("MODEL_REQUIRED");
    expect((await upload("vae-kl", await file("function/vae_kl_ok.onnx"), undefined, "file")).json().error.code).toBe("MISSING_MODEL");
    const big = await upload("vae-kl", Buffer.alloc(300_000, 7));
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe("PAYLOAD_TOO_LARGE");
  });
});
