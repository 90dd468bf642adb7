import type { Tensor } from "./types.ts";

/**
 * Reads NumPy's .npy format (what `numpy.save` writes), so instructors ship private datasets
 * and statistics without a conversion step. Little-endian, C order; versions 1–3.
 *
 * Ours rather than npyjs: npyjs 1.2 takes whatever bytes follow the header as the data (a truncated
 * file yields fewer values than its shape says, with no error), reads big-endian data as little-endian,
 * returns Fortran-order data as if it were C order, and pulls in cross-fetch to load from URLs. An
 * uploaded bundle is hostile, so every header field is checked against the bytes here.
 */
const DTYPES = {
  "<f4": ["float32", Float32Array],
  "<f8": ["float64", Float64Array],
  "<i8": ["int64", BigInt64Array],
  "<i4": ["int32", Int32Array],
  "|u1": ["uint8", Uint8Array],
  "|b1": ["bool", Uint8Array],
} as const;

/**
 * `view: true` returns the data in place, without a copy, when it is aligned for its element type
 * (numpy pads headers to 64 bytes, so it usually is): only for a caller that never writes to it.
 */
export function readNpy(bytes: Uint8Array, name = "array", opts: { view?: boolean } = {}): Tensor {
  const magic = String.fromCharCode(...bytes.subarray(0, 6));
  if (magic !== "\x93NUMPY" || bytes.byteLength < 12) throw new Error(`${name} is not a .npy file`);
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw new Error(`${name}: .npy version ${major} is not supported (1 to 3)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > bytes.byteLength) throw new Error(`${name}: file is shorter than its header says`);
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new Error(`${name}: unreadable .npy header`);
  if (fortran === "True") throw new Error(`${name}: Fortran-order arrays are not supported; save with np.ascontiguousarray`);
  const entry = DTYPES[descr as keyof typeof DTYPES];
  if (!entry) throw new Error(`${name}: dtype ${descr} is not supported (use float32, float64, int64, int32, uint8 or bool)`);
  const dims = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`${name}: unreadable shape (${shapeText})`);
  const count = dims.reduce((a, b) => a * b, 1);
  const [dtype, Ctor] = entry;
  const offset = start + headerLen;
  const byteLength = count * Ctor.BYTES_PER_ELEMENT;
  if (!Number.isSafeInteger(byteLength) || offset + byteLength > bytes.byteLength)
    throw new Error(`${name}: file is shorter than its header says`);
  const at = bytes.byteOffset + offset;
  // Otherwise a copy: the source may be unaligned for the element size, and callers keep the tensor.
  const data =
    opts.view && at % Ctor.BYTES_PER_ELEMENT === 0
      ? new Ctor(bytes.buffer as ArrayBuffer, at, count)
      : new Ctor(bytes.slice(offset, offset + byteLength).buffer);
  return { dtype, dims, data } as Tensor;
}
