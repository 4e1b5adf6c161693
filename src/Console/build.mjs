// Builds the console into one folder of static files: index.html plus content-hashed app-*.js and
// app-*.css, which the control plane serves at /console (index.html revalidated, the rest immutable).
//
//   node build.mjs [outdir]        (default: dist)
//
// Works offline once `npm ci` has installed the pinned packages of package-lock.json.
import * as esbuild from 'esbuild';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

const outdir = resolve(process.argv[2] ?? 'dist');
mkdirSync(outdir, { recursive: true });
for (const name of readdirSync(outdir)) rmSync(join(outdir, name), { recursive: true, force: true });

const result = await esbuild.build({
  entryPoints: ['src/app.js', 'src/app.css'],
  bundle: true,
  minify: true,
  sourcemap: false,
  format: 'esm',
  target: ['es2022'],
  entryNames: '[name]-[hash]',
  outdir,
  metafile: true,
  legalComments: 'eof',
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const script = outputs.find((n) => n.endsWith('.js'));
const style = outputs.find((n) => n.endsWith('.css'));
if (!script || !style) throw new Error(`esbuild produced ${outputs.join(', ')}`);

// No inline script or style anywhere: the content security policy allows only files from /console.
writeFileSync(join(outdir, 'index.html'), `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ECS console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/${style}">
<script type="module" src="/console/${script}"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header id="top"></header>
<main id="main" tabindex="-1"><p>Loading…</p></main>
<noscript>The console needs JavaScript.</noscript>
</body>
</html>
`);
console.log(`console: built ${script}, ${style} into ${outdir}`);
