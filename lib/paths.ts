import { fileURLToPath } from 'node:url';

/** The repository root: the project root of every bundle and asset, wherever `cdk` or a test runs from. */
export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
