import { choiceGrader } from "./choice.ts";
import { expressionGrader } from "./expression.ts";
import { numericGrader } from "./numeric.ts";
import { tensorGrader } from "./tensor.ts";
import { textGrader } from "./text.ts";
import type { Grader } from "./types.ts";

/** type → grader. Adding a grader type means adding it here. */
const registry: Record<string, Grader> = Object.fromEntries(
  [choiceGrader, numericGrader, expressionGrader, tensorGrader, textGrader].map((g) => [g.type, g as Grader]),
);

export function getGrader(type: string): Grader | undefined {
  return Object.hasOwn(registry, type) ? registry[type] : undefined;
}

export const graderTypes = (): string[] => Object.keys(registry);
