import { UnknownEntityError } from '#shared/errors.ts';
import {
  encodeInto,
  FEATURE_COUNT,
  FEATURE_SET,
  type FeatureSet,
  type FieldValues,
  type LabeledRecord,
} from '#shared/features/index.ts';
import type { ModelRegistryReader } from '#shared/inference/model-holder.ts';
import { trainGbdt } from '#shared/model/gbdt.ts';
import type { ChurnModel } from '#shared/model/model-types.ts';
import { exportOnnx } from '#shared/model/onnx-export.ts';
import type { Scorer } from '#shared/model/scorer.ts';
import { featureSetMetadata, featureSetOfVersion } from '#shared/registry/feature-sets.ts';
import type { ModelMetadata, ModelVersion } from '#shared/registry/metadata.ts';
import { promote, type RegistryDeps, registerModel } from '#shared/registry/registry.ts';
import type { Rollout } from '#shared/registry/rollout.ts';
import { trainCandidate } from '#shared/training/train.ts';
import type { TestAws } from './aws.ts';

/** The registry of the test AWS (model `churn`). */
export const testRegistry = (aws: Pick<TestAws, 'clients' | 'names'>): RegistryDeps => ({
  s3: aws.clients.s3,
  dynamo: aws.clients.dynamo,
  bucket: aws.names.models,
  table: aws.names.modelRegistry,
});

/** Trains a small model on generated customers, exactly as the retrain step does, and registers it. */
export async function registerTrainedModel(
  aws: Pick<TestAws, 'clients' | 'names'>,
  customers: readonly LabeledRecord[],
  { seed, nTrees }: { seed: number; nTrees: number },
): Promise<{ version: string; model: ChurnModel }> {
  const rows = customers.length;
  const x = new Float32Array(rows * FEATURE_COUNT);
  const y = new Uint8Array(rows);
  customers.forEach((record, i) => {
    encodeInto(record, x, i * FEATURE_COUNT);
    y[i] = record.churned;
  });
  const candidate = await trainCandidate(
    { rows, x, y, customerIds: customers.map((c) => c.customer_id), keys: [] },
    { datasetUri: 's3://test', parent: null, seed, params: { nTrees } },
  );
  const metadata = await registerModel(testRegistry(aws), {
    name: 'churn',
    onnx: candidate.onnx,
    metadata: candidate.metadata,
    baseline: candidate.baseline,
  });
  return { version: metadata.version, model: candidate.model };
}

/**
 * Trains a small GBDT on `customers` encoded with `featureSet` (any definition, as a later or earlier
 * code would have trained it) and registers it with that definition stored, as training stores it.
 */
export async function registerModelOn(
  registry: RegistryDeps,
  featureSet: FeatureSet,
  customers: readonly (LabeledRecord & FieldValues)[],
  { seed, nTrees }: { seed: number; nTrees: number },
): Promise<{ version: string; model: ChurnModel }> {
  const rows = customers.length;
  const x = new Float32Array(rows * featureSet.count);
  const y = new Uint8Array(rows);
  customers.forEach((record, i) => {
    const missing = featureSet.encodeInto(record, x, i * featureSet.count);
    if (missing) throw new Error(`customer ${record.customer_id} lacks ${missing}`);
    y[i] = record.churned;
  });
  const { model } = trainGbdt({ x, y, featureCount: featureSet.count }, { nTrees, seed });
  const metadata = await registerModel(registry, {
    name: 'churn',
    onnx: exportOnnx(model, { featureNames: featureSet.names }),
    metadata: {
      algorithm: 'gbdt-hist-logistic',
      dataset: { uri: 's3://test', rows },
      feature_set: featureSetMetadata(featureSet),
      metrics: { auc: 0.8, logloss: 0.4, accuracy: 0.8 },
      threshold: 0.5,
      training: { rows, params: { nTrees, seed }, duration_ms: 1 },
      parent: null,
    },
  });
  return { version: metadata.version, model };
}

export async function promoteVersion(
  aws: Pick<TestAws, 'clients' | 'names'>,
  version: string,
): Promise<void> {
  await promote(testRegistry(aws), {
    name: 'churn',
    version,
    reason: 'test',
    actor: 'test',
  });
}

/** A scorer that answers `score(row)` for each row, and keeps what it was asked and whether it was released. */
export interface FakeScorer extends Scorer {
  /** Each scoring call's input. */
  readonly calls: { readonly x: Float32Array; readonly rows: number }[];
  released: boolean;
}

export function fakeScorer(
  score: (row: Float32Array) => number = () => 0.8,
  featureCount = FEATURE_COUNT,
): FakeScorer {
  const scorer: FakeScorer = {
    kind: 'js',
    featureCount,
    calls: [],
    released: false,
    async scoreBatch(x, rows) {
      scorer.calls.push({ x, rows });
      return Float64Array.from({ length: rows }, (_, r) =>
        score(x.subarray(r * featureCount, (r + 1) * featureCount)),
      );
    },
    async scoreOne(x) {
      scorer.calls.push({ x, rows: 1 });
      return score(x);
    },
    async release() {
      scorer.released = true;
    },
  };
  return scorer;
}

/**
 * Metadata of a registered `churn` version: trained on the running feature set, registered before
 * definitions were stored (no `definition`), or on `featureSet`, whose definition it stores.
 */
export const modelMetadata = (version: string, threshold = 0.5, featureSet?: FeatureSet): ModelMetadata => ({
  name: 'churn',
  version,
  algorithm: 'gbdt',
  dataset: { uri: 's3://test', rows: 100 },
  created_at: '2026-01-01T00:00:00.000Z',
  feature_set: featureSet
    ? featureSetMetadata(featureSet)
    : {
        version: FEATURE_SET.version,
        fingerprint: FEATURE_SET.fingerprint,
        names: [...FEATURE_SET.names],
      },
  artifact: { format: 'onnx', sha256: '0'.repeat(64), bytes: 1 },
  metrics: { auc: 0.8, logloss: 0.4, accuracy: 0.8 },
  threshold,
  training: { rows: 100, params: {}, duration_ms: 1 },
  parent: null,
});

/**
 * Registers `count` versions (v1…) of `name` with {@link modelMetadata}'s fixture and made-up artifacts
 * (nothing loads them), and promotes v1: a registry to roll versions out in.
 */
export async function registerFixtureVersions(registry: RegistryDeps, name: string, count: number) {
  const {
    name: _name,
    version: _version,
    created_at: _created,
    artifact: _artifact,
    ...metadata
  } = modelMetadata('v1');
  for (let seed = 1; seed <= count; seed++) {
    await registerModel(registry, { name, onnx: new Uint8Array([seed, 7]), metadata, baseline: {} });
  }
  await promote(registry, {
    name,
    version: 'v1',
    reason: 'first',
    actor: 'test',
  });
}

/** What the SDK throws when S3 or DynamoDB does not answer: callDependency makes it UnavailableError. */
export const connectionRefused = () =>
  Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4566'), { code: 'ECONNREFUSED' });

/**
 * The model registry as the model holder reads it, in memory: `champion` and `rollout` are the aliases, `versions` what
 * loading each version gives (its metadata, or the error it fails with), and while `down` is set every
 * read fails with it.
 */
export interface FakeRegistry extends ModelRegistryReader {
  champion: string | undefined;
  rollout: Rollout | undefined;
  readonly versions: Map<string, ModelMetadata | Error>;
  down: Error | undefined;
  /** How often the alias was read. */
  checks: number;
  /** The versions loaded, in order. */
  readonly loads: string[];
}

export function fakeRegistry(versions: Record<string, ModelMetadata | Error> = {}): FakeRegistry {
  const registry: FakeRegistry = {
    champion: undefined,
    rollout: undefined,
    versions: new Map(Object.entries(versions)),
    down: undefined,
    checks: 0,
    loads: [],
    async getAliases() {
      registry.checks++;
      if (registry.down) throw registry.down;
      return { champion: registry.champion as ModelVersion | undefined, rollout: registry.rollout };
    },
    async loadVerifiedModel({ version }) {
      registry.loads.push(version);
      if (registry.down) throw registry.down;
      const entry = registry.versions.get(version);
      if (entry instanceof Error) throw entry;
      if (!entry) throw new UnknownEntityError(`no version ${version}`);
      return { metadata: entry, onnx: new Uint8Array([1]), featureSet: featureSetOfVersion(entry) };
    },
  };
  return registry;
}
