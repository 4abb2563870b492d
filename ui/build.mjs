// Bundles the dashboard into OUTDIR (index.html, assets/app.js, assets/app.css).
import * as esbuild from 'esbuild';
import { mkdirSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] || join(here, 'dist');
mkdirSync(join(out, 'assets'), { recursive: true });
await esbuild.build({
  entryPoints: [join(here, 'src/main.js')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2020',
  outfile: join(out, 'assets/app.js'),
  logLevel: 'warning',
});
copyFileSync(join(here, 'src/app.css'), join(out, 'assets/app.css'));
copyFileSync(join(here, 'index.html'), join(out, 'index.html'));
// Compressed once here, so the server never compresses the bundle per request.
const js = join(out, 'assets/app.js');
writeFileSync(js + '.gz', gzipSync(readFileSync(js), { level: 9 }));
