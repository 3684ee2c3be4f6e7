/**
 * How esbuild bundles every function: by `cdk deploy` (lib/constructs/keel-function.ts), for the
 * local platform (scripts/build-functions.ts) and, in the same words, the ECS image
 * (lambdas/predict/Dockerfile). One minified ES module with its dependencies in it.
 */
export const FUNCTION_BUNDLING = {
  // ESM entry points of dependencies first: they tree-shake, CommonJS does not.
  mainFields: ['module', 'main'],
  /**
   * esbuild's ESM output has no `require`; CommonJS dependencies (parts of the AWS SDK, Powertools)
   * call it for Node built-ins, so the bundle defines one.
   */
  banner: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);",
  minify: true,
  // Error classes name themselves (`new.target.name`): logs must read UnavailableError, not "ju".
  keepNames: true,
  // Stack traces need the mappings, not a copy of every source file: a smaller package to load.
  sourcesContent: false,
} as const;

/** onnxruntime-node's native addon is never bundled: Lambda loads it from a layer, the image from its node_modules. */
export const ONNXRUNTIME_PACKAGE = 'onnxruntime-node';
