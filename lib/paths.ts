import { fileURLToPath } from 'node:url';

/** The repository root: the project root of every bundle and asset, wherever `cdk` or a test runs from. */
export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Template metadata of a function naming its handler's source file, relative to {@link REPO_ROOT}. */
export const ENTRY_METADATA = 'keel:entry';
