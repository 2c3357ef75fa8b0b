// Build the tablet app into tablet/dist: one esbuild bundle (the app, PouchDB's
// browser build, ajv, @hpke/core and js/fle.mjs), the static files, and a
// service worker whose cache name is a hash of everything it serves. The
// output depends only on the sources and the locked packages (no timestamps).
//   node tablet/build.mjs
import { createHash } from "node:crypto";
import { copyFile, mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "src");
const dist = join(here, "dist");
const STATIC = ["index.html", "styles.css", "manifest.webmanifest", "icon.svg"];

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await esbuild.build({
  entryPoints: [join(src, "app.mjs")],
  outfile: join(dist, "app.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["chrome109", "firefox115", "safari16"],
  minify: true,
  legalComments: "none",
  // js/fle.mjs has a node CLI behind a guard; its node imports never run here.
  external: ["node:*"],
  define: { global: "globalThis" },
  logLevel: "warning",
});
for (const name of STATIC) await copyFile(join(src, name), join(dist, name));

const served = ["app.js", ...STATIC].sort();
const hash = createHash("sha256");
for (const name of served) hash.update(name).update("\0").update(await readFile(join(dist, name))).update("\0");
const version = hash.digest("hex").slice(0, 16);
const worker = (await readFile(join(src, "sw.js"), "utf8"))
  .replace("__VERSION__", version)
  .replace("__FILES__", JSON.stringify(["./", ...served]));
await writeFile(join(dist, "sw.js"), worker);
const sizes = {};
for (const name of (await readdir(dist)).sort()) sizes[name] = (await readFile(join(dist, name))).length;
await writeFile(join(dist, "build.json"), JSON.stringify({ version, sizes }, null, 1) + "\n");
process.stdout.write(`tablet app ${version} built in ${dist}\n`);
