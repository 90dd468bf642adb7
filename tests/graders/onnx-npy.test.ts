import { describe, expect, it } from "vitest";
import { readNpy } from "../../graders/onnx/npy.ts";
import { fixtureFile } from "../helpers/model-grading.ts";

/** A version-1 .npy file as numpy.save writes it: magic, version, header padded to 64 bytes, data. */
function npy(header: string, data: Uint8Array, version = 1): Uint8Array {
  const prefix = version === 1 ? 10 : 12;
  const padded = header.padEnd(Math.ceil((prefix + header.length + 1) / 64) * 64 - prefix - 1, " ") + "\n";
  const out = new Uint8Array(prefix + padded.length + data.length);
  out.set([0x93, ..."NUMPY"].map((c) => (typeof c === "number" ? c : c.charCodeAt(0))));
  out[6] = version;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, padded.length, true);
  else view.setUint32(8, padded.length, true);
  out.set(new TextEncoder().encode(padded), prefix);
  out.set(data, prefix + padded.length);
  return out;
}
const floats = (...v: number[]) => new Uint8Array(Float32Array.from(v).buffer);

describe("readNpy", () => {
  it("reads what numpy.save writes: dtype, shape, C-order data", () => {
    const t = readNpy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", floats(1, 2, 3, 4)));
    expect(t).toEqual({ dtype: "float32", dims: [2, 2], data: Float32Array.of(1, 2, 3, 4) });
    expect(readNpy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", floats(7), 2))).toMatchObject({ dims: [] });
    const mu = readNpy(fixtureFile("advanced/generator/frechet_mu.npy"));
    expect([mu.dtype, mu.dims]).toEqual(["float64", [32]]);
  });

  it("refuses hostile or foreign files with a reason, never reading past the end", () => {
    const refuse = (bytes: Uint8Array) => () => readNpy(bytes, "x.npy");
    const header = (shape: string, descr = "<f4", fortran = "False") =>
      `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
    expect(refuse(new TextEncoder().encode("a,b\n1,2\n"))).toThrow("x.npy is not a .npy file");
    expect(refuse(npy(header("(3, 2)"), floats(1, 2, 3, 4)))).toThrow("x.npy: file is shorter than its header says");
    expect(refuse(npy(header("(-1, 2)"), floats(1, 2)))).toThrow("x.npy: unreadable shape (-1, 2)");
    expect(refuse(npy(header("(99999999999, 99999999999)"), floats(1)))).toThrow(/unreadable shape|shorter than its header/);
    expect(refuse(npy(header("(2,)", ">f4"), floats(1, 2)))).toThrow("dtype >f4 is not supported");
    expect(refuse(npy(header("(2,)", "<f4", "True"), floats(1, 2)))).toThrow(/Fortran-order arrays are not supported/);
    const truncatedHeader = npy(header("(2,)"), floats(1, 2)).slice(0, 30);
    expect(refuse(truncatedHeader)).toThrow("x.npy: file is shorter than its header says");
    const future = npy(header("(2,)"), floats(1, 2));
    future[6] = 9;
    expect(refuse(future)).toThrow("x.npy: .npy version 9 is not supported (1 to 3)");
  });
});
