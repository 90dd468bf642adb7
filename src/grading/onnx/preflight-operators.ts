import type { Budget } from "../../../graders/onnx/types.ts";
import { cap, refuse, show } from "./preflight-graph.ts";

/**
 * The operator allow-list of preflight: every standard ai.onnx operator up to opset 21, minus those that
 * read outside the tensors they are given or make data out of nothing (random generators: grading must be
 * reproducible; string and regex operators: unbounded work on text no grader feeds; ImageDecoder: a codec
 * on attacker-controlled bytes). A problem adds them back with `budget.operators.allow` and forbids more
 * with `budget.operators.deny`. Other allowed domains (e.g. ai.onnx.ml) are governed by ONNX_ALLOWED_DOMAINS.
 */

// From onnx.defs (onnx 1.12, opset 17), plus the operators of opsets 18 to 21.
const STANDARD = new Set(
  `Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Bernoulli BitShift
  BlackmanWindow Cast CastLike Ceil Celu Clip Compress Concat ConcatFromSequence Constant ConstantOfShape Conv ConvInteger
  ConvTranspose Cos Cosh CumSum DFT DepthToSpace DequantizeLinear Det Div Dropout DynamicQuantizeLinear Einsum Elu Equal
  Erf Exp Expand EyeLike Flatten Floor GRU Gather GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool
  GlobalMaxPool Greater GreaterOrEqual GridSample HammingWindow HannWindow HardSigmoid HardSwish Hardmax Identity If
  InstanceNormalization IsInf IsNaN LRN LSTM LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax Loop
  LpNormalization LpPool MatMul MatMulInteger Max MaxPool MaxRoiPool MaxUnpool Mean MeanVarianceNormalization
  MelWeightMatrix Min Mod Mul Multinomial Neg NegativeLogLikelihoodLoss NonMaxSuppression NonZero Not OneHot Optional
  OptionalGetElement OptionalHasElement Or PRelu Pad Pow QLinearConv QLinearMatMul QuantizeLinear RNN RandomNormal
  RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp
  ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RoiAlign Round
  STFT Scan Scatter ScatterElements ScatterND Selu SequenceAt SequenceConstruct SequenceEmpty SequenceErase
  SequenceInsert SequenceLength SequenceMap Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax
  SoftmaxCrossEntropyLoss Softplus Softsign SpaceToDepth Split SplitToSequence Sqrt Squeeze StringNormalizer Sub Sum Tan
  Tanh TfIdfVectorizer ThresholdedRelu Tile TopK Transpose Trilu Unique Unsqueeze Upsample Where Xor
  BitwiseAnd BitwiseNot BitwiseOr BitwiseXor CenterCropPad Col2Im GroupNormalization Mish DeformConv AffineGrid Gelu
  ImageDecoder RegexFullMatch StringConcat StringSplit`.split(/\s+/),
);

/** Off unless the problem allows them, with the reason a student is told. */
export const RISKY: ReadonlyMap<string, string> = new Map([
  ...["RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"].map(
    (op) => [op, "random operators make grading irreproducible; take noise as an input instead"] as const,
  ),
  ...["StringNormalizer", "StringConcat", "StringSplit", "RegexFullMatch"].map(
    (op) => [op, "string and regex operators have no place in a tensor model here"] as const,
  ),
  ["ImageDecoder", "decoding images inside the model is not allowed; take decoded pixels as the input"],
]);

/** Refuses an ai.onnx operator that the problem's list does not allow. */
export function checkOperator(op: string, label: string, operators: Budget["operators"]) {
  if (operators.allow.includes(op)) return;
  const how = "Export with standard operators only (no custom ops or ATen fallthrough).";
  if (!STANDARD.has(op)) refuse("OPERATOR_NOT_ALLOWED", `${cap(label)} uses '${show(op)}', which is not a standard ONNX operator. ${how}`);
  const risky = RISKY.get(op);
  if (risky) refuse("OPERATOR_NOT_ALLOWED", `${cap(label)} uses '${op}', which this problem does not allow: ${risky}.`);
  if (operators.deny.includes(op))
    refuse("OPERATOR_NOT_ALLOWED", `${cap(label)} uses '${op}', which this problem does not allow. Build the model without it.`);
}
