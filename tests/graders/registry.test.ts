import { describe, expect, it } from "vitest";
import { getGrader, graderTypes } from "../../graders/index.ts";

describe("grader registry", () => {
  it("registers the answer graders and the model graders", () => {
    expect(graderTypes().sort()).toEqual([
      "choice",
      "expression",
      "numeric",
      "onnx-classifier",
      "onnx-detector",
      "onnx-embedding",
      "onnx-encoder-objective",
      "onnx-function",
      "onnx-generator",
      "psychometric",
      "psychometric-curve",
      "rdm-comparison",
      "tensor",
      "text",
    ]);
    for (const type of graderTypes()) {
      const g = getGrader(type)!;
      expect(g.type).toBe(type);
      expect(g.version).toMatch(/^\d+\.\d+\.\d+$/);
      // Model graders say what upload they take; answer graders take JSON.
      expect(Boolean(g.modelSpec)).toBe(type.startsWith("onnx-"));
    }
  });

  it("does not resolve unknown or inherited names", () => {
    expect(getGrader("onnx")).toBeUndefined();
    expect(getGrader("toString")).toBeUndefined();
    expect(getGrader("__proto__")).toBeUndefined();
  });
});
