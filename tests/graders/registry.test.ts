import { describe, expect, it } from "vitest";
import { getGrader, graderTypes } from "../../graders/index.ts";

describe("grader registry", () => {
  it("registers the five core graders", () => {
    expect(graderTypes().sort()).toEqual(["choice", "expression", "numeric", "tensor", "text"]);
    for (const type of graderTypes()) {
      const g = getGrader(type)!;
      expect(g.type).toBe(type);
      expect(g.version).toMatch(/^\d+\.\d+\.\d+$/);
    }
  });

  it("does not resolve unknown or inherited names", () => {
    expect(getGrader("onnx-function")).toBeUndefined();
    expect(getGrader("toString")).toBeUndefined();
    expect(getGrader("__proto__")).toBeUndefined();
  });
});
