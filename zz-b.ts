import { gzipSync } from "node:zlib";
import { Header } from "tar";
import { formatBundleErrors, loadSetFromTarGz } from "./src/catalog/index.ts";
function tar(entries: any[], trailer = Buffer.alloc(0)) {
  const blocks: Buffer[] = [];
  for (const e of entries) { const body = Buffer.from(e.body ?? ""); const blk = Buffer.alloc(512); new Header({ path: e.path, type: "File", size: body.length, mode: 0o644, mtime: new Date(0) }).encode(blk, 0); blocks.push(blk, body, Buffer.alloc((512 - (body.length % 512)) % 512)); }
  return Buffer.concat([...blocks, Buffer.alloc(1024), trailer]);
}
const ok = [{ path: "t/set.yaml", body: "slug: t\ntitle: T\nproblems: [a]\n" }];
const which = process.argv[2];
const buf = which === "bomb" ? gzipSync(tar(ok, Buffer.alloc(80 << 20))) : which === "trunc" ? gzipSync(tar(ok).subarray(0, 700)) : gzipSync(tar([...ok, { path: "t/a/big", body: Buffer.alloc(40 << 20) }]));
console.log("built", buf.length);
const r = await loadSetFromTarGz(buf);
console.log(r.ok ? "OK" : formatBundleErrors(r.errors).join("\n"));
