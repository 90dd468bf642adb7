import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { budgetSchema, type BudgetInput, type ModelSpec } from "../graders/onnx/types.ts";
import { preflight, type PreflightOptions } from "../src/grading/onnx/preflight.ts";
import { decodeModel, encodeModel } from "../src/grading/onnx/schema.ts";
import { PREFLIGHT_REFUSALS } from "./fixtures/onnx/hostile/refusals.ts";

// Fixtures come from scripts/fixtures/hostile.py; all claim the signature x float32 [N, 4] -> y float32 [N, 4].
const fixture = (name: string) => readFileSync(new URL(`fixtures/onnx/hostile/${name}.onnx`, import.meta.url));

function spec(budget: BudgetInput = {}): ModelSpec {
  return {
    inputs: [{ name: "x", dtype: "float32", shape: ["N", 4] }],
    outputs: [{ name: "y", dtype: "float32", shape: ["N", 4] }],
    budget: budgetSchema.parse(budget),
  };
}

function refusal(bytes: Uint8Array, budget: BudgetInput = {}, opts: PreflightOptions = {}) {
  const r = preflight(bytes, spec(budget), opts);
  if (r.ok) throw new Error(`expected a refusal, got ${JSON.stringify(r.info)}`);
  return r;
}

/** The benign model, decoded, changed by `edit`, encoded again: one fault at a time without a fixture file. */
function edited(edit: (m: any) => void): Uint8Array {
  const m = decodeModel(fixture("benign"));
  edit(m);
  return encodeModel(m);
}

describe("preflight", () => {
  it("accepts the benign model and describes it", () => {
    const r = preflight(fixture("benign"), spec());
    expect(r).toEqual({
      ok: true,
      info: {
        irVersion: 8,
        opsets: { "ai.onnx": 17 },
        parameters: 1,
        nodes: 1,
        inputs: [{ name: "x", dtype: "float32", shape: ["N", 4] }],
        outputs: [{ name: "y", dtype: "float32", shape: ["N", 4] }],
      },
    });
  });

  it.each(PREFLIGHT_REFUSALS)("refuses %s with %s", (name, code) => {
    const r = refusal(fixture(name));
    expect(r.code).toBe(code);
    // eslint-disable-next-line no-control-regex
    expect(r.message).not.toMatch(/[\u0000-\u001f]/);
    expect(r.message.length).toBeLessThan(600);
  });

  it("says where the fault is and what to do", () => {
    expect(refusal(fixture("external_subgraph")).message).toMatch(
      /Constant node in the body 'then_branch' of an If node.*'secret\.txt'.*save_as_external_data=False/,
    );
    expect(refusal(fixture("fixed_batch")).message).toMatch(/Input 'x' fixes dimension 0 to 1.*dynamic_axes=\{'x': \{0: 'N'\}\}/);
    expect(refusal(fixture("wrong_input_name")).message).toMatch(/no input named 'x' \(its inputs: 'input'\)/);
    expect(refusal(fixture("wrong_dtype")).message).toMatch(/element type float64; this problem expects float32/);
    expect(refusal(fixture("opset_too_new")).message).toMatch(/opset 22; this grader supports 7 to 21/);
    expect(refusal(fixture("custom_domain")).message).toMatch(/'Evil' from domain 'com\.evil'/);
  });

  it("applies the problem's budget", () => {
    expect(refusal(fixture("benign"), { maxBytes: 50 }).code).toBe("TOO_LARGE");
    expect(refusal(fixture("too_many_parameters"), { maxParameters: 100 })).toMatchObject({
      code: "TOO_MANY_PARAMETERS",
      message: expect.stringMatching(/2000 parameters/),
    });
    expect(preflight(fixture("too_many_parameters"), spec()).ok).toBe(true);
    // The endless Loop has one node outside and two in its body.
    expect(refusal(fixture("endless_loop"), { maxNodes: 2 })).toMatchObject({
      code: "TOO_MANY_NODES",
      message: expect.stringMatching(/3 nodes/),
    });
    expect(preflight(fixture("endless_loop"), spec({ maxNodes: 3 })).ok).toBe(true);
    expect(refusal(fixture("too_many_parameters"), { maxConstantBytes: 1000 }).code).toBe("CONSTANT_TOO_LARGE");
  });

  it("lets through what only the sandbox can stop", () => {
    // A Loop that stops on a computed condition, and a shape computed from the input's runtime size.
    expect(preflight(fixture("endless_loop"), spec()).ok).toBe(true);
    expect(preflight(fixture("cos_bomb_input"), spec()).ok).toBe(true);
  });

  it("allows model-local functions only for the nodes that call them", () => {
    const r = preflight(fixture("local_function"), spec());
    expect(r).toMatchObject({ ok: true, info: { opsets: { "ai.onnx": 17, "local.fn": 1 }, nodes: 1 } });
    const stray = edited((m) => m.graph.node.push({ op_type: "Other", domain: "local.fn", input: ["x"], output: ["z"], attribute: [] }));
    expect(refusal(stray).code).toBe("DOMAIN_NOT_ALLOWED");
  });

  it("takes the allow-lists from its options", () => {
    expect(preflight(fixture("custom_domain"), spec(), { allowedDomains: ["ai.onnx", "com.evil"] }).ok).toBe(true);
    expect(preflight(fixture("opset_too_new"), spec(), { opsetRanges: { "ai.onnx": [7, 22] } }).ok).toBe(true);
    expect(refusal(fixture("benign"), {}, { irVersions: [9, 10] }).code).toBe("OPSET_UNSUPPORTED");
  });

  it("finds external data however it is marked and wherever it sits", () => {
    const markOnly = edited((m) => (m.graph.initializer[0].data_location = 1));
    expect(refusal(markOnly).code).toBe("EXTERNAL_DATA");
    const entriesOnly = edited((m) => m.graph.initializer[0].external_data.push({ key: "location", value: ".env" }));
    expect(refusal(entriesOnly).message).toMatch(/Initializer 'two'.*'\.env'/);
    const training = edited((m) => {
      const graph = { name: "t", initializer: [{ name: "w", data_type: 1, dims: [1], data_location: 1 }] };
      m.training_info.push({ initialization: graph });
    });
    expect(refusal(training).code).toBe("EXTERNAL_DATA");
  });

  it("computes the size of ConstantOfShape from a constant shape", () => {
    const viaConstantNode = edited((m) => {
      m.graph.node.unshift(
        { op_type: "Constant", input: [], output: ["shape"], attribute: [{ name: "value_ints", type: 7, ints: [100000, 100000] }] },
        { op_type: "ConstantOfShape", input: ["shape"], output: ["big"], attribute: [] },
      );
    });
    expect(refusal(viaConstantNode).message).toMatch(/ConstantOfShape node fills a tensor of shape \[100000, 100000\] \(37\.3 GiB\)/);
  });

  it("allows the standard operators minus the risky ones, per problem", () => {
    expect(refusal(fixture("random_op")).message).toMatch(/'RandomNormalLike', which this problem does not allow: random operators/);
    expect(refusal(fixture("string_op")).message).toMatch(/'StringNormalizer'.*string and regex operators/);
    expect(preflight(fixture("random_op"), spec({ operators: { allow: ["RandomNormalLike"] } })).ok).toBe(true);
    expect(refusal(fixture("benign"), { operators: { deny: ["Mul"] } })).toMatchObject({
      code: "OPERATOR_NOT_ALLOWED",
      message: expect.stringMatching(/Node 'double' \(Mul\) uses 'Mul', which this problem does not allow/),
    });
    const unknown = edited((m) => (m.graph.node[0].op_type = "Mull"));
    expect(refusal(unknown).message).toMatch(/'Mull', which is not a standard ONNX operator/);
    // Function bodies are checked too: the call is local, its nodes are not.
    const inFunction = edited((m) => {
      m.opset_import.push({ domain: "local.fn", version: 1 });
      const body = [{ op_type: "RandomUniformLike", input: ["a"], output: ["b"], attribute: [] }];
      m.functions.push({
        name: "Noise",
        domain: "local.fn",
        input: ["a"],
        output: ["b"],
        node: body,
        opset_import: [{ domain: "", version: 17 }],
      });
      m.graph.node[0] = { op_type: "Noise", domain: "local.fn", input: ["x"], output: ["y"], attribute: [] };
    });
    expect(refusal(inFunction).code).toBe("OPERATOR_NOT_ALLOWED");
  });

  it("sizes what Expand, Tile, Resize, Pad, Range and OneHot make from shapes and constants, against the budget", () => {
    expect(refusal(fixture("expand_bomb")).message).toMatch(
      /An Expand node makes a tensor of shape \[65536, 65536, 4\], at least 17,179,869,184 elements.*at most 67,108,864 per tensor/,
    );
    // Shape of a [4, 4] weight times 4096: the propagation follows Shape and Mul.
    expect(refusal(fixture("expand_computed")).message).toMatch(/shape \[16384, 16384\]/);
    // The batch dim N is unknown and counts as 1.
    expect(refusal(fixture("tile_bomb")).message).toMatch(/shape \[16384, 65536\]/);
    expect(refusal(fixture("pad_bomb")).message).toMatch(/shape \[16385, 16388\]/);
    expect(refusal(fixture("onehot_bomb")).message).toMatch(/shape \[\?, 4, 100000000\]/);
    expect(refusal(fixture("range_bomb")).message).toMatch(/shape \[1000000000\]/);
    expect(refusal(fixture("resize_bomb")).message).toMatch(/shape \[10000, 40000\]/);
    expect(refusal(fixture("cos_bomb_computed")).message).toMatch(/fills a tensor of shape \[32768, 32768\] \(4\.0 GiB\)/);
    // The bound is the problem's: with room for 2^31 elements the same models pass.
    for (const name of ["expand_computed", "tile_bomb", "pad_bomb", "resize_bomb"])
      expect(preflight(fixture(name), spec({ maxActivationElements: 2 ** 31 })).ok).toBe(true);
  });

  it("bounds constant Loop trip counts (nested ones multiplied) and Scans over tensors of known length", () => {
    expect(refusal(fixture("loop_too_long")).message).toMatch(
      /A Loop node runs 1,000,000,000 iterations; this problem allows at most 100,000/,
    );
    expect(refusal(fixture("nested_loops")).message).toMatch(/runs 1,000 iterations inside loops that run 1,000 times/);
    expect(refusal(fixture("scan_too_long")).message).toMatch(/A Scan node runs 1,000,000 iterations/);
    expect(preflight(fixture("nested_loops"), spec({ maxLoopIterations: 1_000_000 })).ok).toBe(true);
    expect(preflight(fixture("scan_too_long"), spec({ maxLoopIterations: 1_000_000 })).ok).toBe(true);
  });

  it("keeps the propagation's own memory small: 1,000 chained Concat(a, a) of a shape do not double an array", () => {
    const doubling = edited((m) => {
      m.graph.initializer.push({ name: "c0", data_type: 7, dims: [2], int64_data: [1, 1] });
      for (let i = 0; i < 1000; i++)
        m.graph.node.push({
          op_type: "Concat",
          input: [`c${i}`, `c${i}`],
          output: [`c${i + 1}`],
          attribute: [{ name: "axis", type: 2, i: 0 }],
        });
      m.graph.node.push({ op_type: "Expand", input: ["x", "c1000"], output: ["unused"], attribute: [] });
    });
    // Without the cap the array reaches 2^32 entries by node 31 and preflight throws instead of answering.
    expect(preflight(doubling, spec({ maxNodes: 5000 })).ok).toBe(true);
  });

  it("matches the signature: free dims free, fixed dims equal, nothing extra", () => {
    const dims = (d: object[]) => edited((m) => (m.graph.input[0].type.tensor_type.shape.dim = d));
    expect(preflight(dims([{ dim_value: -1 }, { dim_value: 4 }]), spec()).ok).toBe(true);
    expect(preflight(dims([{}, {}]), spec()).ok).toBe(true);
    expect(
      preflight(
        edited((m) => (m.graph.input[0].type.tensor_type.shape = null)),
        spec(),
      ).ok,
    ).toBe(true);
    expect(refusal(dims([{ dim_param: "N" }, { dim_value: 3 }])).message).toMatch(/size 3 in dimension 1; this problem expects 4/);
    expect(refusal(dims([{ dim_param: "N" }])).message).toMatch(/has 1 dimensions \[N\]; this problem expects 2/);
    expect(refusal(dims([{ dim_value: 0 }, { dim_value: 4 }])).code).toBe("INPUT_MISMATCH");
    const extraInput = edited((m) => m.graph.input.push({ name: "mask", type: { tensor_type: { elem_type: 1 } } }));
    expect(refusal(extraInput).message).toMatch(/input\(s\) 'mask' that this problem does not feed/);
    const fixedOutput = edited((m) => (m.graph.output[0].type.tensor_type.shape.dim[0] = { dim_value: 1 }));
    expect(refusal(fixedOutput).code).toBe("OUTPUT_MISMATCH");
    const extraOutput = edited((m) => m.graph.output.push({ name: "debug", type: { tensor_type: { elem_type: 1 } } }));
    expect(preflight(extraOutput, spec()).ok).toBe(true);
  });

  it("refuses nesting beyond protobuf's depth limit without exhausting the stack", () => {
    // 40 nested If bodies: 120 messages deep, past protobufjs' limit of 100, written by hand
    // because the encoder refuses that depth too.
    let graph: Uint8Array = new Uint8Array();
    for (let i = 0; i < 40; i++) {
      const attr = Buffer.concat([field(1, Buffer.from("then_branch")), field(6, graph)]);
      const node = Buffer.concat([field(4, Buffer.from("If")), field(5, attr)]);
      graph = field(1, node);
    }
    const model = Buffer.concat([varint((1 << 3) | 0), varint(8), field(7, graph)]);
    expect(refusal(model).code).toBe("GRAPH_TOO_DEEP");
  });

  it("refuses uploads that would cost far more memory to decode than their size", () => {
    // 1.1 M one-byte varints in a packed int64_data: once ~70 bytes of heap each as Long objects.
    const numbers = Buffer.concat([varint(8), varint(8), field(7, field(5, field(7, Buffer.alloc(1_100_000, 1))))]);
    expect(refusal(numbers, { maxParameters: 10 }).code).toBe("TOO_MANY_PARAMETERS");
    // 110,000 empty nodes, two bytes each: one object apiece.
    const nodes = Buffer.concat([
      varint(8),
      varint(8),
      field(7, Buffer.concat(Array.from({ length: 110_000 }, () => Buffer.from([0x0a, 0])))),
    ]);
    expect(refusal(nodes, { maxNodes: 10 }).code).toBe("TOO_LARGE");
  });

  it("answers every corrupted fixture with a result, never an exception (seeded fuzz)", () => {
    const names = ["benign", "external_subgraph", "external_function", "function_bomb", "deep_if", "sparse_bomb", "endless_loop"];
    names.push("expand_computed", "nested_loops", "scan_too_long", "onehot_bomb", "pad_bomb", "resize_bomb");
    const files = names.map(fixture);
    let seed = 20261128;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) >>> 0) % n;
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.from(files[rnd(files.length)]!);
      for (let k = 0; k <= rnd(4); k++) bytes[rnd(bytes.length)] = rnd(256);
      expect(() => preflight(bytes, spec())).not.toThrow();
    }
  });

  it("treats empty and non-model protobuf as NOT_ONNX", () => {
    expect(refusal(new Uint8Array()).code).toBe("NOT_ONNX");
    expect(refusal(encodeModel({ ir_version: 8, producer_name: "no graph" })).code).toBe("NOT_ONNX");
    expect(refusal(Buffer.from("PK\u0003\u0004 a zip file, not a model")).code).toBe("NOT_ONNX");
  });
});

/** A length-delimited protobuf field, for writing what the encoder would refuse to. */
const field = (n: number, body: Uint8Array) => Buffer.concat([varint((n << 3) | 2), varint(body.length), body]);

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}
