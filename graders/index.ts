import type { Grader } from "./types.ts";

/** type → grader. Adding a grader type means adding it here. */
const registry: Record<string, Grader> = {};

export function getGrader(type: string): Grader | undefined {
  return Object.hasOwn(registry, type) ? registry[type] : undefined;
}

export const graderTypes = (): string[] => Object.keys(registry);
