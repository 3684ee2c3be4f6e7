import { relative } from 'node:path';
import { REPO_ROOT } from '#lib/paths.ts';
import { FUNCTIONS_BUILD_DIR } from '#local/lambda/function-build.ts';
import { buildCli, CLI_BUILD_DIR } from './build-cli.ts';
import { buildLocalFunctions } from './build-functions.ts';

// `npm ci` (prepare) and `npm run build`. `npm ci --omit=dev` builds too: tsx, a dependency, brings esbuild.
const started = performance.now();
await Promise.all([buildCli(), buildLocalFunctions()]);
process.stdout.write(
  `built the CLI into ${relative(REPO_ROOT, CLI_BUILD_DIR)} and the local functions into ${relative(REPO_ROOT, FUNCTIONS_BUILD_DIR)} in ${Math.round(performance.now() - started)} ms\n`,
);
