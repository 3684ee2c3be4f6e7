import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AssetHashType, DockerImage, RemovalPolicy } from 'aws-cdk-lib';
import { Architecture, Code, LayerVersion, Runtime } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { ONNXRUNTIME_PACKAGE } from '#lib/bundling.ts';
import { REPO_ROOT } from '#lib/paths.ts';

/**
 * What the layer takes from node_modules: the JavaScript onnxruntime-node loads and its Linux x64 native
 * binary, nothing else. The full package is 288 MB (macOS, Windows and arm64 builds, sources, install
 * scripts); this is about 45 MB. `onnxruntime-common` is the one package onnxruntime-node requires at
 * run time (its CommonJS build; `adm-zip` and `global-agent` serve only the install script).
 */
const LAYER_CONTENT = [
  { name: 'onnxruntime-node', files: /^(package\.json|dist\/[^/]+\.js|bin\/napi-v6\/linux\/x64\/[^/]+)$/ },
  { name: 'onnxruntime-common', files: /^(package\.json|dist\/cjs\/(.+\.js|package\.json))$/ },
] as const;

/** The file without which the layer cannot load onnxruntime on Lambda (x86_64). */
const NATIVE_BINDING = 'bin/napi-v6/linux/x64/onnxruntime_binding.node';

interface LayerContent {
  /** `[path in the layer, path on disk]` of every file the layer holds, in a stable order. */
  readonly files: readonly (readonly [string, string])[];
  /** Hash of paths and contents: a synth copies the files again only when they changed. */
  readonly hash: string;
}

let content: LayerContent | undefined;

/** Read once per process: every app synthesized in it (tests make many) shares the same node_modules. */
function layerContent(): LayerContent {
  if (content !== undefined) return content;
  const files: [string, string][] = [];
  for (const { name, files: pattern } of LAYER_CONTENT) {
    const root = join(REPO_ROOT, 'node_modules', name);
    for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const relative = join(entry.parentPath, entry.name).slice(root.length + 1);
      if (pattern.test(relative))
        files.push([`nodejs/node_modules/${name}/${relative}`, join(root, relative)]);
    }
  }
  files.sort(([a], [b]) => (a < b ? -1 : 1));
  const hash = createHash('sha256');
  for (const [target, source] of files) hash.update(`${target}\0`).update(readFileSync(source));
  content = { files, hash: hash.digest('hex') };
  return content;
}

/** Props of {@link OnnxRuntimeLayer}. */
export interface OnnxRuntimeLayerProps {
  /**
   * What happens to published layer versions when they leave the stack.
   *
   * @default - RemovalPolicy.DESTROY: a function keeps working on a deleted version it already uses
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * A Lambda layer providing `onnxruntime-node` to Node.js 22 functions on x86_64, at
 * `/opt/nodejs/node_modules` (where the runtime resolves both `require` and ESM `import`).
 * Its content is copied from the repository's node_modules at synth: local bundling only, never Docker.
 * Functions using it must leave {@link OnnxRuntimeLayer.EXTERNAL_MODULES} out of their bundle.
 */
export class OnnxRuntimeLayer extends Construct {
  /** Modules a function must mark external to load them from this layer. */
  public static readonly EXTERNAL_MODULES: readonly string[] = [ONNXRUNTIME_PACKAGE];

  public readonly layer: LayerVersion;

  constructor(scope: Construct, id: string, props: OnnxRuntimeLayerProps = {}) {
    super(scope, id);
    if (!existsSync(join(REPO_ROOT, 'node_modules/onnxruntime-node', NATIVE_BINDING))) {
      throw new Error(
        `OnnxRuntimeLayer ${this.node.path}: node_modules/onnxruntime-node/${NATIVE_BINDING} is missing: run npm ci`,
      );
    }
    const { files, hash } = layerContent();
    const version: string = JSON.parse(
      readFileSync(join(REPO_ROOT, 'node_modules/onnxruntime-node/package.json'), 'utf8'),
    ).version;

    this.layer = new LayerVersion(this, 'Layer', {
      description: `onnxruntime-node ${version} (linux x64 binary only)`,
      license: 'MIT',
      compatibleArchitectures: [Architecture.X86_64],
      compatibleRuntimes: [Runtime.NODEJS_22_X],
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
      code: Code.fromAsset(join(REPO_ROOT, 'node_modules/onnxruntime-node'), {
        assetHashType: AssetHashType.CUSTOM,
        assetHash: hash,
        bundling: {
          // Required by the type, never pulled: tryBundle always succeeds.
          image: DockerImage.fromRegistry('unused'),
          local: {
            tryBundle(outputDir: string): boolean {
              for (const [target, source] of files) {
                mkdirSync(dirname(join(outputDir, target)), { recursive: true });
                copyFileSync(source, join(outputDir, target));
              }
              return true;
            },
          },
        },
      }),
    });
  }
}
