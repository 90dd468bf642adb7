import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { create } from "tar";

/** A .tar.gz of a set folder, as an instructor would make it with `tar czf`. */
export async function tarGzOf(dir: string, edit?: (copy: string) => Promise<void>): Promise<Buffer> {
  const tmp = await mkdtemp(path.join(tmpdir(), "bundle-"));
  try {
    const name = path.basename(dir);
    await cp(dir, path.join(tmp, name), { recursive: true });
    if (edit) await edit(path.join(tmp, name));
    const chunks: Buffer[] = [];
    for await (const chunk of create({ gzip: true, cwd: tmp, portable: true }, [name])) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

export function multipart(field: string, filename: string, data: Buffer, type = "application/gzip") {
  const form = new FormData();
  form.append(field, new Blob([new Uint8Array(data)], { type }), filename);
  return form;
}
