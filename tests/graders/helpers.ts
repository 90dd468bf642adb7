import { expect } from "vitest";
import { gradeResultSchema, type Grader, type GradeResult } from "../../graders/types.ts";

/** Parses the config as the catalog would, grades, and checks the result against the shared schema. */
export async function grade(
  grader: Grader,
  rawConfig: unknown,
  answer: unknown,
  opts: { seed?: string; points?: number } = {},
): Promise<GradeResult> {
  const config = grader.configSchema.parse(rawConfig);
  const points = opts.points ?? 10;
  const result = await grader.grade({ config, privateData: new Map(), answer, seed: opts.seed ?? "student-1", points });
  expect(gradeResultSchema.parse(result)).toEqual(result);
  expect(result.maxScore).toBe(points);
  expect(result.score).toBeGreaterThanOrEqual(0);
  expect(result.score).toBeLessThanOrEqual(points);
  return result;
}

/** The zod messages (with paths) of a config that must not validate. */
export function configErrors(grader: Grader, rawConfig: unknown): string[] {
  const parsed = grader.configSchema.safeParse(rawConfig);
  expect(parsed.success).toBe(false);
  return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}
