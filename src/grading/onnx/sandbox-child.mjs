// One sandbox child: holds at most one onnxruntime session and answers the parent's requests in order.
// Plain JS so that bare `node` starts it without a TypeScript loader; started by sandbox-pool.ts as
//   [unshare -n] [setpriv --reuid=…] prlimit --as=<bytes> --core=0 --nproc=<n> -- node sandbox-child.mjs <ort entry>
// in an empty working directory with a scrubbed environment (isolation.ts decides the prefix). Replies carry a `kind` chosen here, never
// parsed out of onnxruntime's messages, because those can contain names from the hostile model.
//
// Requests come on the IPC channel, possibly several ahead. The bytes they carry (model, tensors) are
// in a file the parent writes, readable here as fd 4: a request's `bytes` lists [position, length] of
// each; they are read, before anything else, into a buffer this process reuses.
import { readSync } from "node:fs";
import process from "node:process";
import { pathToFileURL } from "node:url";

const mod = await import(pathToFileURL(process.argv[2]).href);
const ort = mod.default ?? mod;
ort.env.logLevel = "error";

const BYTES_FD = 4;
const ARRAYS = {
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

let session = null;
let maxOutputBytes = Infinity;
let inbox = new ArrayBuffer(0);
/** An inbox up to this size is kept for the next session: its pages are then already mapped. */
const KEEP_BYTES = 64 * 1024 * 1024;

/** The parent's mistake, not the model's: the parent reports it as an infrastructure error. */
class ProtocolError extends Error {}

/** Reads the request's bytes from fd 4, each at an 8-byte aligned offset of `inbox` (int64 views need it). */
function receive(spans) {
  const offsets = [];
  let total = 0;
  for (const [, n] of spans) {
    offsets.push(total);
    total += Math.ceil(n / 8) * 8;
  }
  if (inbox.byteLength < total) inbox = new ArrayBuffer(total);
  return spans.map(([at, n], i) => {
    const part = new Uint8Array(inbox, offsets[i], n);
    for (let got = 0; got < n;) {
      const r = readSync(BYTES_FD, part, got, n - got, at + got);
      if (r === 0) throw new ProtocolError("the request's bytes are missing");
      got += r;
    }
    return part;
  });
}

const handlers = {
  async open(msg, [model]) {
    await release();
    maxOutputBytes = msg.maxOutputBytes;
    session = await ort.InferenceSession.create(model, {
      executionProviders: msg.providers,
      intraOpNumThreads: msg.intraOpNumThreads,
      interOpNumThreads: msg.interOpNumThreads,
      graphOptimizationLevel: "all",
      logSeverityLevel: 3,
    });
    return { inputNames: session.inputNames, outputNames: session.outputNames };
  },

  async run(msg, data) {
    if (!session) return { ok: false, kind: "protocol", error: "no session is open" };
    const feeds = {};
    msg.feeds.forEach((t, i) => {
      const Ctor = ARRAYS[t.dtype];
      const bytes = data[i];
      feeds[t.name] = new ort.Tensor(t.dtype, new Ctor(bytes.buffer, bytes.byteOffset, bytes.byteLength / Ctor.BYTES_PER_ELEMENT), t.dims);
    });
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
    // A large batch should not stay pinned in an idle child; a kept one is zeroed, so that the next session
    // (another student's model) finds no bytes of this one in it.
    if (inbox.byteLength > KEEP_BYTES) inbox = new ArrayBuffer(0);
    else new Uint8Array(inbox).fill(0);
    return {};
  },
};

async function release() {
  const s = session;
  session = null;
  if (s) await s.release();
}

// Strictly in order, one at a time: the parent may send the next request before this one is answered.
let served = Promise.resolve();
process.on("message", (msg) => {
  served = served.then(() => serve(msg));
});

async function serve(msg) {
  let reply;
  try {
    const data = receive(msg.bytes ?? []);
    const handler = handlers[msg.op];
    reply = handler ? await handler(msg, data) : { ok: false, kind: "protocol", error: `unknown request ${msg.op}` };
  } catch (e) {
    reply = { ok: false, kind: e instanceof ProtocolError ? "protocol" : "ort", error: String(e?.message ?? e) };
  }
  process.send({ ok: true, ...reply, id: msg.id });
}

// The parent is gone (or closed the channel): nothing left to serve.
process.on("disconnect", () => process.exit(0));

process.send({ type: "ready", version: ort.env.versions?.common ?? "unknown" });
