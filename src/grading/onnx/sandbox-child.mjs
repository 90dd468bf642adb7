// One sandbox child: holds at most one onnxruntime session and answers the parent's requests in order.
// Plain JS so that bare `node` starts it without a TypeScript loader; started by sandbox-pool.ts as
//   prlimit --as=<bytes> -- node sandbox-child.mjs <absolute path of onnxruntime-node's entry>
// in an empty working directory with a scrubbed environment. Replies carry a `kind` chosen here, never
// parsed out of onnxruntime's messages, because those can contain names from the hostile model.
import process from "node:process";
import { pathToFileURL } from "node:url";

const mod = await import(pathToFileURL(process.argv[2]).href);
const ort = mod.default ?? mod;
ort.env.logLevel = "error";

let session = null;
let maxOutputBytes = Infinity;

const handlers = {
  async open(msg) {
    await release();
    maxOutputBytes = msg.maxOutputBytes;
    session = await ort.InferenceSession.create(msg.model, {
      executionProviders: msg.providers,
      intraOpNumThreads: msg.intraOpNumThreads,
      interOpNumThreads: msg.interOpNumThreads,
      graphOptimizationLevel: "all",
      logSeverityLevel: 3,
    });
    return { inputNames: session.inputNames, outputNames: session.outputNames };
  },

  async run(msg) {
    if (!session) return { ok: false, kind: "protocol", error: "no session is open" };
    const feeds = {};
    for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor(t.dtype, t.data, t.dims);
    const results = await session.run(feeds);
    const outputs = {};
    let bytes = 0;
    for (const [name, t] of Object.entries(results)) {
      if (Array.isArray(t.data))
        return { ok: false, kind: "bad-output", error: `Output '${name}' is a ${t.type} tensor, which graders cannot read.` };
      bytes += t.data.byteLength;
      outputs[name] = { dtype: t.type, dims: Array.from(t.dims), data: t.data };
    }
    if (bytes > maxOutputBytes)
      return { ok: false, kind: "bad-output", error: `The outputs take ${bytes} bytes; at most ${maxOutputBytes} are accepted.` };
    return { outputs };
  },

  async close() {
    await release();
    return {};
  },
};

async function release() {
  const s = session;
  session = null;
  if (s) await s.release();
}

process.on("message", async (msg) => {
  let reply;
  try {
    const handler = handlers[msg.op];
    reply = handler ? await handler(msg) : { ok: false, kind: "protocol", error: `unknown request ${msg.op}` };
  } catch (e) {
    reply = { ok: false, kind: "ort", error: String(e?.message ?? e) };
  }
  process.send({ ok: true, ...reply, id: msg.id });
});

// The parent is gone (or closed the channel): nothing left to serve.
process.on("disconnect", () => process.exit(0));

process.send({ type: "ready", version: ort.env.versions?.common ?? "unknown" });
