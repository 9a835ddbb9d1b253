// Builds the web console into dist/console (served by control-plane/console/assets.ts):
// one minified bundle with Preact inside, the page and its stylesheet. esbuild, because
// it is one small npm package with a prebuilt binary (no plugins, no config tree) and
// bundles this in well under a second, so `npm run build` and `npm test` stay fast.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'dist', 'console');
await mkdir(out, { recursive: true });
await build({
  entryPoints: [join(here, 'main.tsx')],
  outfile: join(out, 'app.js'),
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
  tsconfig: join(here, 'tsconfig.json'),
});
await copyFile(join(here, 'index.html'), join(out, 'index.html'));
await copyFile(join(here, 'app.css'), join(out, 'app.css'));
