import { choiceGrader } from "./choice.ts";
import { expressionGrader } from "./expression.ts";
import { numericGrader } from "./numeric.ts";
import { detectorGrader } from "./onnx-detector.ts";
import { embeddingGrader } from "./onnx-embedding.ts";
import { generatorGrader } from "./onnx-generator.ts";
import { onnxClassifierGrader } from "./onnx-classifier.ts";
import { onnxEncoderObjectiveGrader } from "./onnx-encoder-objective.ts";
import { onnxFunctionGrader } from "./onnx-function.ts";
import { tensorGrader } from "./tensor.ts";
import { psychometricCurveGrader } from "./psychometric-curve.ts";
import { psychometricGrader } from "./psychometric.ts";
import { rdmComparisonGrader } from "./rdm-comparison.ts";
import { textGrader } from "./text.ts";
import type { Grader } from "./types.ts";

/** type → grader. Adding a grader type means adding it here. */
const registry: Record<string, Grader> = Object.fromEntries(
  [
    choiceGrader,
    numericGrader,
    expressionGrader,
    tensorGrader,
    textGrader,
    psychometricGrader,
    psychometricCurveGrader,
    rdmComparisonGrader,
    onnxFunctionGrader,
    onnxEncoderObjectiveGrader,
    onnxClassifierGrader,
    embeddingGrader,
    generatorGrader,
    detectorGrader,
  ].map((g) => [g.type, g as Grader]),
);

export function getGrader(type: string): Grader | undefined {
  return Object.hasOwn(registry, type) ? registry[type] : undefined;
}

export const graderTypes = (): string[] => Object.keys(registry);
