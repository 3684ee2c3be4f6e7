import { z } from 'zod';
import { KEEL_ENV, optionalEnv } from '#shared/env.ts';

/** `v1`, `v2`, …: the one spelling of a version, in S3 keys, metadata, the API and the CLI. */
export const versionSchema = z.string().regex(/^v[1-9]\d{0,8}$/, 'a version looks like v1, v2, …');
export type ModelVersion = `v${number}`;

export const modelNameSchema = z
  .string()
  .regex(
    /^[a-z][a-z0-9-]{0,62}$/,
    'model name: lower-case letters, digits and dashes, starting with a letter',
  );

/** The model a stage serves when its configuration names none. */
export const DEFAULT_MODEL_NAME = 'churn';

/** The model this process works on: `KEEL_MODEL_NAME`, else {@link DEFAULT_MODEL_NAME}. */
export function modelNameFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return optionalEnv(KEEL_ENV.modelName, DEFAULT_MODEL_NAME, env);
}

export function versionNumber(version: string): number {
  return Number(versionSchema.parse(version).slice(1));
}

export function versionName(n: number): ModelVersion {
  return `v${n}`;
}

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'sha256 as 64 lower-case hex digits');
const probability = z.number().min(0).max(1);

/** What `metadata.json` holds beside every `model.onnx` (docs/architecture.md, "Model registry"). */
export const modelMetadataSchema = z.object({
  name: modelNameSchema,
  version: versionSchema,
  algorithm: z.string().min(1),
  dataset: z.object({
    uri: z.string().min(1),
    rows: z.number().int().min(0),
  }),
  created_at: z.iso.datetime({ offset: true }),
  feature_set: z.object({
    version: z.string().min(1),
    fingerprint: z.string().regex(/^sha256:[0-9a-f]{64}$/),
    names: z.array(z.string().min(1)).min(1),
    /**
     * The serialized definition the version was trained on (its hash is `fingerprint`): serving, batch
     * scoring, drift and the retrain gate compute this version's features from it. Absent in versions
     * registered before definitions were stored; those are served only by code whose current definition
     * has their fingerprint. Parsed when used, so a definition this code cannot read does not hide the
     * version from listings.
     */
    definition: z.unknown().optional(),
  }),
  artifact: z.object({
    format: z.literal('onnx'),
    sha256: sha256Hex,
    bytes: z.number().int().positive(),
  }),
  metrics: z
    .object({
      auc: probability,
      logloss: z.number().min(0),
      accuracy: probability,
    })
    .catchall(z.unknown()),
  threshold: probability,
  training: z.object({
    rows: z.number().int().min(0),
    params: z.record(z.string(), z.unknown()),
    duration_ms: z.number().min(0),
    /** What trained it (stage config `retrain.engine`); absent: the Lambda trainer. */
    engine: z.enum(['lambda', 'sagemaker']).optional(),
    /** The SageMaker training job that trained it (engine `sagemaker`). */
    sagemaker: z
      .object({
        job_name: z.string().min(1),
        image: z.string().min(1),
        instance_type: z.string().min(1),
        instance_count: z.number().int().min(1),
      })
      .optional(),
    /**
     * Set when the retrain read the dataset as a stream and drew a stratified sample of at most `cap`
     * rows (stage config `retrain.maxTrainingRows`); absent in versions trained before, or in memory.
     */
    sample: z
      .object({
        rows_seen: z.number().int().min(0),
        rows_used: z.number().int().min(0),
        seed: z.number().int().min(0),
        cap: z.number().int().min(1),
      })
      .optional(),
  }),
  /** The champion when this version was trained (what it was compared against), or null. */
  parent: versionSchema.nullable(),
  /** Set for models trained outside Keel (`keel models register --onnx`): what was imported and how. */
  external: z
    .object({
      /** The file as given. */
      file: z.string(),
      /** sha256 of that file; `artifact.sha256` differs when {@link changes} rewrote the graph. */
      sha256: sha256Hex,
      /** Rewrites that made the graph servable (a ZipMap output replaced, a double input cast). */
      changes: z.array(z.string()),
      /** Why it was registered despite another feature set (`--force --reason`). */
      forced: z.string().optional(),
    })
    .optional(),
});

export type ModelMetadata = z.infer<typeof modelMetadataSchema>;

/** Metadata as the caller supplies it; the registry fills in name, version, artifact and created_at. */
export type NewModelMetadata = Omit<ModelMetadata, 'name' | 'version' | 'artifact' | 'created_at'>;

export const modelKeys = (name: string, version: string) => {
  const prefix = `models/${name}/${version}/`;
  return {
    prefix,
    model: `${prefix}model.onnx`,
    metadata: `${prefix}metadata.json`,
    baseline: `${prefix}baseline.json`,
  };
};
