import { readFileSync } from "node:fs";
import protobuf from "protobufjs";

/**
 * The ONNX protobuf schema, parsed once at module load. Field names keep ONNX's snake_case so that the
 * code reads like the spec. The interfaces below describe only what the preflight reads.
 */
const root = protobuf.parse(readFileSync(new URL("./onnx.proto", import.meta.url), "utf8"), { keepCase: true }).root.resolveAll();
const ModelProto = root.lookupType("onnx.ModelProto");

/** protobufjs hands int64 fields back as Long objects (the `long` package is installed) or as numbers. */
export type Int64 = number | { toNumber(): number };
export const num = (v: Int64 | null | undefined): number => (v == null ? 0 : typeof v === "number" ? v : v.toNumber());

export interface StringStringEntry {
  key: string;
  value: string;
}

export interface TensorProto {
  name: string;
  dims: Int64[];
  data_type: number;
  raw_data: Uint8Array;
  float_data: number[];
  int32_data: number[];
  int64_data: Int64[];
  uint64_data: Int64[];
  double_data: number[];
  string_data: Uint8Array[];
  external_data: StringStringEntry[];
  data_location: number;
}

export interface SparseTensorProto {
  values: TensorProto | null;
  indices: TensorProto | null;
  dims: Int64[];
}

export interface AttributeProto {
  name: string;
  type: number;
  f: number;
  i: Int64;
  floats: number[];
  ints: Int64[];
  strings: Uint8Array[];
  t: TensorProto | null;
  g: GraphProto | null;
  sparse_tensor: SparseTensorProto | null;
  tensors: TensorProto[];
  graphs: GraphProto[];
  sparse_tensors: SparseTensorProto[];
}

export interface NodeProto {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  domain: string;
  overload: string;
  attribute: AttributeProto[];
}

export interface Dimension {
  /** The oneof's name: which of dim_value/dim_param is set, if any. */
  value?: "dim_value" | "dim_param";
  dim_value: Int64;
  dim_param: string;
}

export interface TypeProto {
  value?: "tensor_type" | "sequence_type" | "map_type" | "optional_type" | "sparse_tensor_type" | "opaque_type";
  tensor_type: { elem_type: number; shape: { dim: Dimension[] } | null } | null;
}

export interface ValueInfoProto {
  name: string;
  type: TypeProto | null;
}

export interface GraphProto {
  name: string;
  node: NodeProto[];
  initializer: TensorProto[];
  sparse_initializer: SparseTensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
}

export interface OperatorSetId {
  domain: string;
  version: Int64;
}

export interface FunctionProto {
  name: string;
  domain: string;
  overload: string;
  node: NodeProto[];
  attribute_proto: AttributeProto[];
  opset_import: OperatorSetId[];
}

export interface ModelProto {
  ir_version: Int64;
  opset_import: OperatorSetId[];
  graph: GraphProto | null;
  functions: FunctionProto[];
  training_info: { initialization: GraphProto | null; algorithm: GraphProto | null }[];
}

/**
 * Decodes without copying tensor payloads (a Buffer view makes protobufjs slice instead of copy).
 * Throws on malformed input, and "max depth exceeded" past protobufjs' nesting limit (100 messages),
 * which keeps a deeply nested upload from exhausting the stack. Run `scanWire` first on untrusted bytes.
 */
export function decodeModel(bytes: Uint8Array): ModelProto {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return ModelProto.decode(new NumberReader(buf)) as unknown as ModelProto;
}

/**
 * int64 and uint64 as plain numbers (exact below 2^53, which covers every dim and shape): with a Long
 * object per element, a packed array of one-byte varints cost 70 bytes of heap per byte of upload.
 * The generated decoders use the reader they are given, so this stays local to the preflight.
 */
class NumberReader extends protobuf.BufferReader {
  override int64(): any {
    return this.varint64(true);
  }
  override uint64(): any {
    return this.varint64(false);
  }
  /** Two 32-bit halves, so that negative values (ten-byte varints) come out exact. */
  private varint64(signed: boolean): number {
    let lo = 0;
    let hi = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= this.len) throw new RangeError("index out of range");
      const b = this.buf[this.pos++]!;
      if (shift < 28) lo |= (b & 0x7f) << shift;
      else if (shift === 28) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (shift - 32);
      if (b < 0x80) {
        lo >>>= 0;
        hi >>>= 0;
        if (signed && hi >= 0x80000000) return -((~hi >>> 0) * 2 ** 32 + (~lo >>> 0) + 1);
        return hi * 2 ** 32 + lo;
      }
    }
    throw new Error("invalid varint encoding");
  }
}

export interface WireCounts {
  /** Messages, strings and byte fields: each becomes a JS object or string when decoded. */
  objects: number;
  /** Elements of numeric fields, packed or not: each becomes a JS number. */
  scalars: number;
}

/** Thrown by scanWire as soon as a count passes its limit. */
export class WireLimit extends Error {
  constructor(readonly counts: WireCounts) {
    super("too many protobuf entries");
  }
}

const FIXED_WIDTH: Record<string, number> = { float: 4, fixed32: 4, sfixed32: 4, double: 8, fixed64: 8, sfixed64: 8 };

/**
 * Counts what decoding would allocate, without allocating: decoding hostile bytes into JS objects can
 * cost ~50 times the upload (every 2-byte empty message is an object), so the preflight refuses an
 * upload whose counts are out of all proportion before it decodes anything. Throws on malformed wire
 * data (including groups, which no ONNX exporter writes) and "max depth exceeded" like protobufjs.
 */
export function scanWire(bytes: Uint8Array, limits: WireCounts): WireCounts {
  const counts: WireCounts = { objects: 0, scalars: 0 };
  let pos = 0;
  const varint = (end: number): number => {
    let value = 0;
    for (let i = 0, scale = 1; i < 10; i++, scale *= 128) {
      if (pos >= end) throw new RangeError("index out of range");
      const b = bytes[pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
    }
    throw new Error("invalid varint encoding");
  };
  const message = (type: protobuf.Type, end: number, depth: number) => {
    if (depth > protobuf.util.recursionLimit) throw new Error("max depth exceeded");
    counts.objects++;
    while (pos < end) {
      const tag = varint(end);
      const field = type.fieldsById[Math.floor(tag / 8)];
      switch (tag & 7) {
        case 0:
          varint(end);
          counts.scalars++;
          break;
        case 1:
        case 5:
          pos += (tag & 7) === 1 ? 8 : 4;
          counts.scalars++;
          break;
        case 2: {
          const length = varint(end);
          const stop = pos + length;
          if (stop > end) throw new RangeError("index out of range");
          if (field?.resolvedType instanceof protobuf.Type) message(field.resolvedType, stop, depth + 1);
          else if (field && field.repeated && field.type !== "string" && field.type !== "bytes") {
            const width = FIXED_WIDTH[field.type];
            if (width) counts.scalars += (stop - pos) / width;
            else for (let i = pos; i < stop; i++) if (bytes[i]! < 0x80) counts.scalars++;
          } else if (field) counts.objects++;
          pos = stop;
          break;
        }
        default:
          throw new Error(`unsupported wire type ${tag & 7}`);
      }
      if (pos > end) throw new RangeError("index out of range");
      if (counts.objects > limits.objects || counts.scalars > limits.scalars) throw new WireLimit(counts);
    }
  };
  message(ModelProto, bytes.byteLength, 0);
  return counts;
}

/** For building small models in code (the provider probe, tests); takes plain objects in the schema's shape. */
export function encodeModel(model: object): Uint8Array {
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}
