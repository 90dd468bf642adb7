import { all, create, type MathNode } from "mathjs";

/** A number or a (possibly ragged) nested array of numbers. */
export type Tensor = number | Tensor[];

/**
 * One private mathjs instance. `matrix: "Array"` makes results plain nested arrays;
 * `predictable` makes sqrt(-1) NaN instead of a complex number, which the graders
 * treat as "not finite".
 */
const math = create(all!, { matrix: "Array", predictable: true });

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
// Written to avoid overflow: log(1 + e^x) = max(x, 0) + log1p(e^-|x|).
const softplus = (x: number): number => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
math.import({ sigmoid, softplus, relu: (x: number) => Math.max(0, x) });
const parse = math.parse;

// Defence in depth (mathjs's own "more secure eval" recipe): expressions are
// whitelisted before they are compiled, but should a name ever slip through, these
// still cannot reach the instance's internals. `parse` was kept above for our own use.
const disabled = (name: string) => () => {
  throw new Error(`Function ${name} is disabled`);
};
math.import(
  Object.fromEntries(
    ["import", "createUnit", "evaluate", "parse", "compile", "simplify", "derivative", "resolve", "reviver"].map((name) => [
      name,
      disabled(name),
    ]),
  ),
  { override: true },
);

const words = (list: string): string[] => list.split(" ");

/** Functions a scalar formula may call (students' expressions and all instructor expressions). */
export const SCALAR_FUNCTIONS: readonly string[] = words(
  "abs sqrt cbrt nthRoot exp expm1 log log10 log2 log1p pow sin cos tan sec csc cot asin acos atan " +
    "atan2 sinh cosh tanh asinh acosh atanh min max sign floor ceil round mod hypot erf gamma factorial " +
    "sigmoid softplus relu",
);

/** Extra functions for instructor expressions over matrix/vector parameters. */
export const MATRIX_FUNCTIONS: readonly string[] = words(
  "transpose ctranspose inv pinv det trace dot cross kron norm multiply add subtract divide " +
    "dotMultiply dotDivide dotPow sum prod mean median std variance identity zeros ones diag size concat " +
    "reshape squeeze column row",
);

export const CONSTANTS: readonly string[] = ["pi", "e"];

/** Names a parameter or variable may not take: they are functions, constants or parser keywords. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  ...SCALAR_FUNCTIONS,
  ...MATRIX_FUNCTIONS,
  ...CONSTANTS,
  ...words("end to in mod not and or xor true false null undefined NaN Infinity"),
]);

const SCALAR_OPERATORS = new Set(words("add subtract multiply divide pow unaryMinus unaryPlus mod factorial ctranspose"));
const MATRIX_OPERATORS = new Set([...SCALAR_OPERATORS, "dotMultiply", "dotDivide", "dotPow"]);

/** Lengths and nesting past these overflow mathjs's recursive parser, so they are refused up front. */
export const MAX_EXPRESSION_LENGTH = 2000;
const MAX_NESTING = 50;

export interface CompileOptions {
  /** Variable/parameter names the expression may use. */
  symbols: readonly string[];
  /** Allow matrix literals, indexing and matrix functions (instructor expressions only). */
  matrix?: boolean;
}

export type Compiled =
  | { ok: true; evaluate(scope: ReadonlyMap<string, Tensor>): Tensor }
  | { ok: false; kind: "syntax" | "symbol" | "construct"; message: string };

const fail = (kind: "syntax" | "symbol" | "construct", message: string): Compiled => ({ ok: false, kind, message });

function nestingDepth(src: string): number {
  let depth = 0;
  let max = 0;
  for (const ch of src) {
    if ("([{".includes(ch)) max = Math.max(max, ++depth);
    else if (")]}".includes(ch)) depth--;
  }
  return max;
}

const describe = (names: readonly string[]): string => (names.length ? names.join(", ") : "none");

/**
 * Parses `src` and checks it against a whitelist of node kinds, operators, functions and
 * symbols before compiling it. Anything else (assignments, function definitions, units,
 * strings, property access, comparisons) is refused with a message a student can act on.
 */
export function compileExpression(src: string, options: CompileOptions): Compiled {
  const matrix = options.matrix ?? false;
  if (src.trim() === "") return fail("syntax", "The expression is empty.");
  if (src.length > MAX_EXPRESSION_LENGTH) {
    return fail("syntax", `The expression is longer than ${MAX_EXPRESSION_LENGTH} characters.`);
  }
  if (nestingDepth(src) > MAX_NESTING) {
    return fail("syntax", `The expression nests brackets more than ${MAX_NESTING} deep.`);
  }
  let root: MathNode;
  try {
    root = parse(src);
  } catch (err) {
    if (err instanceof SyntaxError) {
      return fail("syntax", `Could not parse the expression: ${err.message.replace(/\(char (\d+)\)/, "at character $1")}.`);
    }
    return fail("syntax", "The expression is too complex to parse.");
  }

  const symbols = new Set(options.symbols);
  const functions = new Set(matrix ? [...SCALAR_FUNCTIONS, ...MATRIX_FUNCTIONS] : SCALAR_FUNCTIONS);
  const operators = matrix ? MATRIX_OPERATORS : SCALAR_OPERATORS;
  let problem: Compiled | undefined;
  const refuse = (kind: "symbol" | "construct", message: string) => {
    problem ??= fail(kind, message);
  };

  root.traverse((node, path, parent) => {
    const n = node as MathNode & Record<string, any>;
    switch (node.type) {
      case "ConstantNode":
        if (typeof n.value !== "number") refuse("construct", "Only numbers may appear as constants.");
        return;
      case "ParenthesisNode":
        return;
      case "OperatorNode":
        if (!operators.has(n.fn)) refuse("construct", `The operator "${n.op}" is not allowed.`);
        return;
      case "FunctionNode":
        if (n.fn?.type !== "SymbolNode") refuse("construct", "Only named functions may be called.");
        else if (!functions.has(n.fn.name)) refuse("symbol", `Unknown function "${n.fn.name}".`);
        return;
      case "SymbolNode": {
        if (parent?.type === "FunctionNode" && path === "fn") return;
        const name: string = n.name;
        if (symbols.has(name) || CONSTANTS.includes(name)) return;
        // `end` only means something inside an index; elsewhere evaluation reports it.
        if (matrix && name === "end") return;
        if (functions.has(name)) {
          refuse("construct", `"${name}" is a function: write ${name}(...) with parentheses.`);
        } else {
          refuse("symbol", `Unknown symbol "${name}". Allowed variables: ${describe(options.symbols)}.`);
        }
        return;
      }
      case "ArrayNode":
        if (!matrix) refuse("construct", "Matrices and vectors are not allowed here.");
        return;
      case "AccessorNode":
      case "IndexNode":
      case "RangeNode":
        if (!matrix || (node.type === "IndexNode" && n.dotNotation)) {
          refuse("construct", "Indexing and property access are not allowed here.");
        }
        return;
      case "AssignmentNode":
      case "FunctionAssignmentNode":
        refuse("construct", "Assignments and function definitions are not allowed.");
        return;
      case "BlockNode":
        refuse("construct", "Write a single expression (no ';' or line breaks).");
        return;
      default:
        refuse("construct", `This kind of expression (${node.type}) is not allowed.`);
    }
  });
  if (problem) return problem;

  const code = root.compile();
  return {
    ok: true,
    evaluate: (scope) => toTensor(code.evaluate(new Map(scope))),
  };
}

/** Converts a mathjs result to plain numbers; anything else (booleans, units, complex) is an error. */
export function toTensor(value: unknown): Tensor {
  if (typeof value === "number") return value;
  if (Array.isArray(value)) return value.map(toTensor);
  if (math.isMatrix(value)) return toTensor(value.toArray());
  throw new TypeError("The expression did not produce a number or an array of numbers.");
}

/** The shape of a rectangular tensor, or the path of the first ragged/mixed spot. */
export function shapeOf(t: Tensor): { ok: true; shape: number[] } | { ok: false; at: string } {
  if (typeof t === "number") return { ok: true, shape: [] };
  if (t.length === 0) return { ok: true, shape: [0] };
  const first = shapeOf(t[0]!);
  if (!first.ok) return { ok: false, at: `[0]${first.at}` };
  for (let i = 1; i < t.length; i++) {
    const s = shapeOf(t[i]!);
    if (!s.ok) return { ok: false, at: `[${i}]${s.at}` };
    if (s.shape.length !== first.shape.length || s.shape.some((d, k) => d !== first.shape[k])) {
      return { ok: false, at: `[${i}]` };
    }
  }
  return { ok: true, shape: [t.length, ...first.shape] };
}

export const flatten = (t: Tensor): number[] => (typeof t === "number" ? [t] : t.flatMap(flatten));

export const formatShape = (shape: readonly number[]): string => `[${shape.join(",")}]`;
