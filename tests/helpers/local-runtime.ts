import * as ort from "onnxruntime-node";
import { ModelFault, type ModelRuntime, type ModelSession, type Tensor } from "../../graders/onnx/types.ts";

/**
 * Real onnxruntime in the test process, for unit-testing graders on trusted fixture models.
 * Production never does this: the worker's runtime is the sandboxed child-process pool.
 */
export const localRuntime: ModelRuntime = {
  ortVersion: ort.env.versions.common,
  async open(model) {
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(model, { executionProviders: ["cpu"] });
    } catch (e) {
      throw new ModelFault("MODEL_LOAD_FAILED", `onnxruntime could not load the model: ${(e as Error).message}`);
    }
    const s: ModelSession = {
      executionProvider: "cpu",
      inputNames: session.inputNames,
      outputNames: session.outputNames,
      async run(feeds) {
        const ortFeeds = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor(t.dtype, t.data, t.dims)]));
        let out: ort.InferenceSession.ReturnType;
        try {
          out = await session.run(ortFeeds);
        } catch (e) {
          throw new ModelFault("MODEL_RUN_FAILED", (e as Error).message);
        }
        return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { dtype: t.type, dims: [...t.dims], data: t.data } as Tensor]));
      },
      close: () => session.release(),
    };
    return s;
  },
};
