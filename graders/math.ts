import { createRequire } from "node:module";
import type { MathNode } from "mathjs";

/** A number or a (possibly ragged) nested array of numbers. */
export type Tensor = number | Tensor[];

type MathJs = import("mathjs").MathJsInstance;

/**
 * The private mathjs instance, built on first use: a process that never compiles an expression (an API taking
 * `choice` answers, a worker grading them on its event loop) never loads mathjs's thousand modules, about
 * a second of start-up on an idle 2-core machine and several on a loaded one.
 */
let instance: { math: MathJs; parse: MathJs["parse"] } | undefined;
const mathjs = () => (instance ??= buildMath());
/** Builds the instance now: a grading worker's threads do it at boot, so no student's grade waits for it. */
export const preloadMath = (): void => void mathjs();
/** Only a value mathjs made can be a mathjs matrix, and before mathjs is loaded there is none. */
const isMatrix = (v: unknown): v is import("mathjs").Matrix => instance !== undefined && instance.math.isMatrix(v);

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
// Written to avoid overflow: log(1 + e^x) = max(x, 0) + log1p(e^-|x|).
const softplus = (x: number): number => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));

// Defence in depth (mathjs's own "more secure eval" recipe): expressions are
// whitelisted before they are compiled, but should a name ever slip through, these
// still cannot reach the instance's internals. `parse` and `import` are kept by buildMath for our own use.
const disabled = (name: string) => () => {
  throw new Error(`Function ${name} is disabled`);
};

function buildMath() {
  // mathjs's CommonJS build: its thousand modules load without passing through ESM loader hooks (tsx's,
  // in grader threads and under `npm run dev`); a grader thread starts about 40 % sooner (7.4 s → 4.6 s on
  // a loaded 2-core machine).
  const { all, create } = createRequire(import.meta.url)("mathjs") as typeof import("mathjs");
  /**
   * One private mathjs instance. `matrix: "Array"` makes results plain nested arrays;
   * `predictable` makes sqrt(-1) NaN instead of a complex number, which the graders
   * treat as "not finite".
   */
  const math = create(all!, { matrix: "Array", predictable: true });
  math.import({ sigmoid, softplus, relu: (x: number) => Math.max(0, x) });
  const parse = math.parse;
  const importIntoMath = math.import.bind(math);
  math.import(
    Object.fromEntries(
      ["import", "createUnit", "evaluate", "parse", "compile", "simplify", "derivative", "resolve", "reviver"].map((name) => [
        name,
        disabled(name),
      ]),
    ),
    { override: true },
  );
  guardSizes(math, importIntoMath);
  return { math, parse };
}

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

/**
 * The most elements any array an expression builds, passes to a function or returns may hold. An
 * instructor's `sum(zeros(n, n))` with n = 50000 is refused here, naming the function and the size,
 * before mathjs allocates anything (the grading thread's heap cap is the backstop for what slips by).
 */
export const MAX_ELEMENTS = 1_000_000;

export class ExpressionTooLarge extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ExpressionTooLarge";
  }
}

const grouped = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 0 });

/** Elements of a (nested) array, counting no further than just past MAX_ELEMENTS. */
function countElements(v: unknown): number {
  if (isMatrix(v)) return (v.size() as number[]).reduce((a, b) => a * b, 1);
  if (!Array.isArray(v)) return 1;
  let n = 0;
  for (const x of v) {
    n += Array.isArray(x) || isMatrix(x) ? countElements(x) : 1;
    if (n > MAX_ELEMENTS) return n;
  }
  return n;
}

/** The shape along first elements (enough for size estimates; ragged arrays are counted by countElements). */
function shapeAlong(v: unknown): number[] {
  if (isMatrix(v)) return v.size() as number[];
  const out: number[] = [];
  for (let x = v; Array.isArray(x); x = x[0]) out.push(x.length);
  return out;
}

const product = (dims: readonly unknown[]): number => dims.reduce<number>((a, d) => a * (typeof d === "number" ? Math.abs(d) : 1), 1);
const dimsOf = (args: readonly unknown[]): readonly unknown[] => (args.length === 1 && Array.isArray(args[0]) ? args[0] : args);

/** Elements the result will have when broadcasting the arguments (element-wise functions and operators). */
function broadcastSize(args: readonly unknown[]): number {
  const shapes = args.map(shapeAlong);
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = Array.from({ length: rank }, (_, i) => Math.max(1, ...shapes.map((s) => s[s.length - rank + i] ?? 1)));
  return product(out);
}

function multiplySize(args: readonly unknown[]): number {
  let shape = shapeAlong(args[0]);
  for (const b of args.slice(1)) {
    const sb = shapeAlong(b);
    if (shape.length === 0 || sb.length === 0) shape = shape.length === 0 ? sb : shape;
    else shape = [...shape.slice(0, -1), ...sb.slice(1)];
  }
  return product(shape);
}

/** Upper bounds of the result's elements for the functions that make arrays larger than their arguments. */
const resultSize: Record<string, (args: unknown[]) => number> = {
  zeros: (args) => product(dimsOf(args)),
  ones: (args) => product(dimsOf(args)),
  identity: (args) => {
    const dims = dimsOf(args);
    return dims.length === 1 ? product(dims) ** 2 : product(dims);
  },
  range: ([start, end, step = 1]) =>
    typeof start === "number" && typeof end === "number" && typeof step === "number" && step !== 0
      ? Math.max(0, Math.floor((end - start) / step)) + 1
      : 1,
  kron: ([a, b]) => countElements(a) * countElements(b),
  reshape: ([, sizes]) => (Array.isArray(sizes) ? product(sizes) : 1),
  concat: (args) => args.reduce<number>((n, a) => n + (Array.isArray(a) || isMatrix(a) ? countElements(a) : 0), 0),
  diag: ([v, k = 0]) => {
    const shape = shapeAlong(v);
    return shape.length === 1 ? (shape[0]! + Math.abs(typeof k === "number" ? k : 0)) ** 2 : countElements(v);
  },
  multiply: multiplySize,
};

/** A number or a short list of numbers as written; any other array by its shape: <1000×1>. */
function describeArg(a: unknown): string {
  if (typeof a === "number") return String(a);
  if (Array.isArray(a) && a.length <= 8 && a.every((x) => typeof x === "number")) return `[${a.join(", ")}]`;
  return `<${shapeAlong(a).join("×")}>`;
}

/**
 * The most arithmetic one evaluation may do, counted before each call: elements in and out for most
 * functions, m·k·n for a matrix product, n³ (times a constant) for det, inv, pinv, a matrix power or a
 * 2-norm. An expression is re-evaluated wherever its problem is read (e.g. config checks on the API),
 * so each evaluation must stay in the milliseconds; 10⁷ is about 0.1–0.5 s of mathjs here.
 */
export const MAX_WORK = 10_000_000;
let work = 0;

const CUBIC: Record<string, number> = { det: 1, inv: 3, pinv: 10 };

function workOf(name: string, args: unknown[], result: number): number {
  const square = shapeAlong(args[0]);
  const n3 = square.length === 2 ? square[0]! * square[1]! * Math.max(square[0]!, square[1]!) : 0;
  if (Object.hasOwn(CUBIC, name) && n3 > 0) return CUBIC[name]! * n3;
  if (name === "pow" && n3 > 0 && typeof args[1] === "number") return 2 * Math.ceil(Math.log2(Math.abs(args[1]) + 2)) * n3;
  if (name === "norm" && n3 > 0 && args[1] === 2) return 30 * n3;
  if (name === "multiply") {
    let total = 0;
    let shape = shapeAlong(args[0]);
    for (const b of args.slice(1)) {
      const sb = shapeAlong(b);
      total += shape.length && sb.length ? product(shape) * product(sb.slice(1)) : product(shape) * product(sb);
      shape = shape.length === 0 ? sb : sb.length === 0 ? shape : [...shape.slice(0, -1), ...sb.slice(1)];
    }
    return total;
  }
  return args.reduce<number>((sum, a) => sum + countElements(a), result);
}

function checkSizes(name: string, args: unknown[]): void {
  for (const a of args) {
    if (typeof a === "number") continue;
    const n = countElements(a);
    if (n > MAX_ELEMENTS)
      throw new ExpressionTooLarge(
        `${name} was given an array of more than ${grouped(MAX_ELEMENTS)} elements (the most an expression may build)`,
      );
  }
  const n = (resultSize[name] ?? broadcastSize)(args);
  const call = () => `${name}(${args.map(describeArg).join(", ")})`;
  if (n > MAX_ELEMENTS)
    throw new ExpressionTooLarge(`${call()} would build ${grouped(n)} elements; an expression may build at most ${grouped(MAX_ELEMENTS)}`);
  const cost = workOf(name, args, n);
  work += cost;
  if (work > MAX_WORK)
    throw new ExpressionTooLarge(
      `${call()} would take about ${grouped(cost)} operations, past the ${grouped(MAX_WORK)} an expression may take in all`,
    );
}

// Every function and operator an expression can reach checks the sizes first. Everything they use
// internally is created before the override, so mathjs's own algorithms keep the unwrapped versions.
function guardSizes(math: MathJs, importIntoMath: MathJs["import"]): void {
  type Fn = ((...a: unknown[]) => unknown) & { transform?: Fn };
  const guarded = [...new Set([...SCALAR_FUNCTIONS, ...MATRIX_FUNCTIONS, ...MATRIX_OPERATORS, "range"])];
  const functions = math as unknown as Record<string, Fn>;
  // The parser calls a function's transform where it has one (1-based dimensions, inclusive ranges).
  const transforms = (math as unknown as { expression: { transform: Record<string, Fn> } }).expression.transform;
  const originals = guarded.map((name) => [name, functions[name]!, transforms[name]] as const);
  for (const name of ["index", "subset", "matrix", "size"]) void functions[name];
  // Plain functions, not typed ones: mathjs re-creates an imported typed function and drops its transform.
  const guard = (name: string, fn: Fn): Fn => {
    const grows = Object.hasOwn(resultSize, name);
    return (...args: unknown[]) => {
      if (grows || !args.every((a) => typeof a === "number")) checkSizes(name, args);
      return fn(...args);
    };
  };
  importIntoMath(
    Object.fromEntries(
      originals.map(([name, fn, transform]) => {
        const wrapped = guard(name, fn);
        if (transform) wrapped.transform = guard(name, transform);
        return [name, wrapped];
      }),
    ),
    { override: true },
  );
}

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
    root = mathjs().parse(src);
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
    evaluate: (scope) => {
      work = 0;
      const value: unknown = code.evaluate(new Map(scope));
      // A matrix literal of large parameters, e.g. [A, A, ..., A], is built by reference and reaches no function.
      if (countElements(value) > MAX_ELEMENTS)
        throw new ExpressionTooLarge(`the result has more than ${grouped(MAX_ELEMENTS)} elements (the most an expression may build)`);
      return toTensor(value);
    },
  };
}

/** Converts a mathjs result to plain numbers; anything else (booleans, units, complex) is an error. */
export function toTensor(value: unknown): Tensor {
  if (typeof value === "number") return value;
  if (Array.isArray(value)) return value.map(toTensor);
  if (isMatrix(value)) return toTensor(value.toArray());
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
