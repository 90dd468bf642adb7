import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeModel, encodeModel } from "../src/grading/onnx/schema.ts";
import { multipart } from "./helpers/bundles.ts";
import { createAssignment, createHarness, createWorld, waitForGrade, type Harness, type World } from "./helpers/harness.ts";

/**
 * Mutated ONNX through the real API and worker: honest models (x float32 [N, 4] -> y = 2x) with bits
 * flipped, cut short, or with a dimension grown. Each must end with a reason: a 422 MODEL_REJECTED with
 * preflight's code, or a `rejected` grade with the runtime's code; a flip that leaves a working model
 * (a weight's low bit, the IR version) is graded like any model. After each, an honest model grades 1/1.
 */

const HOSTILE = "tests/fixtures/onnx/hostile";
const HONEST = ["benign", "local_function"];
let h: Harness;
let w: World;
let assignmentId: string;

/** A fixed-seed generator (the test must fail the same way twice). */
function rng(seed: number) {
  return (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
}

interface Mutation {
  name: string;
  bytes: Uint8Array;
}

function mutations(models: Record<string, Uint8Array>, perKind: number): Mutation[] {
  const rnd = rng(20261201);
  const out: Mutation[] = [];
  for (const [name, original] of Object.entries(models)) {
    for (let i = 0; i < perKind; i++) {
      const bytes = Uint8Array.from(original);
      const flips = 1 + rnd(3);
      const at: number[] = [];
      for (let k = 0; k < flips; k++) {
        const pos = rnd(bytes.length);
        bytes[pos]! ^= 1 << rnd(8);
        at.push(pos);
      }
      out.push({ name: `${name}: bits flipped at ${at.join(", ")}`, bytes });
    }
    for (let i = 0; i < perKind; i++) {
      const keep = 1 + rnd(original.length - 1);
      out.push({ name: `${name}: cut to ${keep} of ${original.length} bytes`, bytes: original.slice(0, keep) });
    }
    for (let i = 0; i < perKind; i++) {
      const m = decodeModel(original) as any;
      const grown = [4 + 1 + rnd(4096), 2 ** (10 + rnd(25))][i % 2]!;
      const targets = [
        () => (m.graph.input[0].type.tensor_type.shape.dim[1] = { dim_value: grown }),
        () => (m.graph.output[0].type.tensor_type.shape.dim[1] = { dim_value: grown }),
        () => m.graph.initializer[0] && (m.graph.initializer[0].dims = [grown]),
        () => m.graph.input[0].type.tensor_type.shape.dim.push({ dim_value: grown }),
      ];
      const which = rnd(targets.length);
      if (!targets[which]!()) targets[0]!();
      out.push({ name: `${name}: dimension grown to ${grown} (target ${which})`, bytes: encodeModel(m) });
    }
  }
  return out;
}

const upload = (bytes: Uint8Array) =>
  h.app.inject({
    method: "POST",
    url: `/v1/assignments/${assignmentId}/problems/double/submissions`,
    headers: { authorization: `Bearer ${w.students[0]!.token}` },
    payload: multipart("model", "model.onnx", Buffer.from(bytes), "application/octet-stream") as any,
  });

beforeAll(async () => {
  h = await createHarness("onnx_mutated", { MODEL_TIMEOUT_S: "3", SANDBOX_POOL_SIZE: "2", GRADER_EXECUTION_PROVIDERS: "cpu" });
  await h.loadSet("tests/fixtures/sets/onnx-hostile");
  h.startWorker();
  w = await createWorld(h, { students: 1 });
  assignmentId = await createAssignment(h, w, { problemSet: "onnx-hostile" });
}, 60_000);
afterAll(() => h?.close());

describe("mutated ONNX", () => {
  it("every mutation of an honest model ends with a reason, and the next honest model is graded", async () => {
    const models = Object.fromEntries(
      await Promise.all(HONEST.map(async (n) => [n, new Uint8Array(await readFile(`${HOSTILE}/${n}.onnx`))] as const)),
    );
    const list = mutations(models, 8);
    const tally = { refusedAtApi: 0, rejectedByWorker: 0, stillValidGraded: 0 };
    const reasons = new Map<string, number>();
    const honest = models.benign!;
    for (const m of list) {
      const res = await upload(m.bytes);
      let reason: string;
      if (res.statusCode === 422) {
        const error = res.json().error;
        expect(error, m.name).toMatchObject({ code: "MODEL_REJECTED", details: { reason: expect.stringMatching(/^[A-Z_]+$/) } });
        expect(error.message.length, m.name).toBeGreaterThan(20);
        reason = error.details.reason;
        tally.refusedAtApi++;
      } else {
        expect(res.statusCode, `${m.name}: ${res.body}`).toBe(202);
        const graded = await waitForGrade(h, res.json().id, w.students[0]!.token, 30_000);
        expect(["rejected", "graded"], `${m.name}: ${JSON.stringify(graded.feedback)}`).toContain(graded.status);
        if (graded.status === "rejected") {
          reason = /\b(MODEL_[A-Z_]+|[A-Z_]{6,})\b/.exec(graded.feedback.summary)?.[1] ?? "";
          expect(reason, `${m.name}: ${graded.feedback.summary}`).not.toBe("");
          tally.rejectedByWorker++;
        } else {
          reason = "graded";
          tally.stillValidGraded++;
          console.log(`still a working model, graded ${graded.score}/${graded.maxScore}: ${m.name}`);
          // With this seed a survivor only renames something (e.g. the symbolic dim 'N'): the same model, full marks.
          expect(graded.score, m.name).toBe(graded.maxScore);
        }
      }
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);

      const next = await upload(honest);
      expect(next.statusCode, `after ${m.name}`).toBe(202);
      expect(await waitForGrade(h, next.json().id, w.students[0]!.token, 30_000), `after ${m.name}`).toMatchObject({
        status: "graded",
        score: 1,
      });
    }
    console.log(
      `mutated ONNX: ${list.length} mutations tried: ${tally.refusedAtApi} refused at the API, ${tally.rejectedByWorker} rejected by the worker, ${tally.stillValidGraded} still valid and graded; reasons ${JSON.stringify(Object.fromEntries(reasons))}`,
    );
    expect(list.length).toBe(48);
    // Flips that leave a working model are rare; most mutations must be refused outright.
    expect(tally.refusedAtApi + tally.rejectedByWorker).toBeGreaterThanOrEqual(list.length * 0.8);
  }, 600_000);
});
