import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runChecked } from "../graders/onnx/session.ts";
import { ModelFault, type ModelSession } from "../graders/onnx/types.ts";
import { multipart } from "./helpers/bundles.ts";
import { createAssignment, createHarness, createWorld, waitForGrade, type Harness, type World } from "./helpers/harness.ts";

// Real API, real worker, real sandbox. The "double" problem feeds models private inputs drawn from the
// student's seed; leaky_gather (scripts/fixtures/hostile.py) fails on them, and onnxruntime's error quotes
// an index computed from a private input value.
let h: Harness;
let w: World;
let assignmentId: string;

const upload = async (name: string) =>
  h.app.inject({
    method: "POST",
    url: `/v1/assignments/${assignmentId}/problems/double/submissions`,
    headers: { authorization: `Bearer ${w.students[0]!.token}` },
    payload: multipart(
      "model",
      `${name}.onnx`,
      await readFile(`tests/fixtures/onnx/hostile/${name}.onnx`),
      "application/octet-stream",
    ) as any,
  });

beforeAll(async () => {
  h = await createHarness("feedback_leaks", { MODEL_TIMEOUT_S: "5", SANDBOX_POOL_SIZE: "2", GRADER_EXECUTION_PROVIDERS: "cpu" });
  await h.loadSet("tests/fixtures/sets/onnx-hostile");
  h.startWorker();
  w = await createWorld(h, { students: 1 });
  assignmentId = await createAssignment(h, w, { problemSet: "onnx-hostile" });
}, 60_000);
afterAll(() => h?.close());

describe("feedback on a model that fails on private inputs", () => {
  it("tells the student a generic MODEL_RUN_FAILED; staff read onnxruntime's own text", async () => {
    const res = await upload("leaky_gather");
    expect(res.statusCode).toBe(202);
    const id = res.json().id;
    const student = await waitForGrade(h, id, w.students[0]!.token, 30_000);
    const staff = await waitForGrade(h, id, w.instructor.token, 30_000);

    expect(student).toMatchObject({ status: "rejected", score: 0 });
    expect(student.feedback.summary).toMatch(/\(MODEL_RUN_FAILED\): it failed while running on the grading inputs/);

    // Staff see the runtime's words, with the private value in them.
    const note = staff.feedback.tests.find((t: { staffMessage?: string }) => t.staffMessage);
    expect(note.staffMessage).toMatch(/idx=-?\d+/);
    const leaked = /idx=(-?\d+)/.exec(note.staffMessage)![1]!;

    // The student's response carries none of it: not the text, not the value, not the staff-only test.
    const body = JSON.stringify(student);
    expect(body).not.toMatch(/idx|out of data bounds|Gather|staffMessage|runtime error/i);
    expect(body).not.toContain(leaked);
    expect(student.feedback.tests).toEqual([]);
  });

  it("names a private batch size by its dim, not its number, when an output has the wrong shape", async () => {
    const session: ModelSession = {
      executionProvider: "cpu",
      inputNames: ["x"],
      outputNames: ["y"],
      run: async () => ({ y: { dtype: "float32", dims: [37, 3], data: new Float32Array(111) } }),
      close: async () => undefined,
    };
    const err = await runChecked(session, {}, [{ name: "y", dtype: "float32", shape: ["N", 4] }], { N: 37 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFault);
    expect(err).toMatchObject({
      message: "Output 'y' has shape [N, 3]; expected [N, 4].",
      staffDetail: "Output 'y' has shape [37, 3]; expected [37, 4].",
    });
  });
});
