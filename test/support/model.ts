import { encodeInto, FEATURE_COUNT, FEATURE_SET, type LabeledRecord } from '#shared/features/index.ts';
import type { ChurnModel } from '#shared/model/model-types.ts';
import { promote, type RegistryDeps, registerModel } from '#shared/registry/registry.ts';
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

export async function promoteVersion(
  aws: Pick<TestAws, 'clients' | 'names'>,
  version: string,
): Promise<void> {
  await promote(testRegistry(aws), {
    name: 'churn',
    version,
    featureFingerprint: FEATURE_SET.fingerprint,
    reason: 'test',
    actor: 'test',
  });
}
