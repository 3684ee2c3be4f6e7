#!/usr/bin/env node
// Entry for `npx keel` and `npm start`: the CLI that `npm ci` built into dist/cli (scripts/build-cli.ts)
// while none of the files it was built from changed since; otherwise (a source edited and `npm run build`
// not run yet) the TypeScript itself, through tsx.
import { fileURLToPath } from 'node:url';
import { buildIsCurrent } from '../scripts/build-manifest.mjs';

// The CLI runs on the developer's Node (20 is supported here); Lambda runs 22+, so the SDK's notice is noise.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const build = new URL('../dist/cli/', import.meta.url);

if (buildIsCurrent(fileURLToPath(build))) {
  process.setSourceMapsEnabled(true);
  await import(new URL('keel.js', build).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./keel.ts');
}
