import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateRecords } from '#shared/data/generate.ts';
import { FEATURE_SET } from '#shared/features/index.ts';
import { getChampion, promote, readMetadata, registerModel } from '#shared/registry/registry.ts';
import { DEFAULT_MAX_TRAINING_ROWS } from '#shared/training/limits.ts';
import { ChampionNotComparableError, retrain, trainAndRegister } from '#shared/training/retrain.ts';
import { readTrainingSample } from '#shared/training/sample.ts';
import {
  type Candidate,
  DEFAULT_TEST_SHARE,
  trainCandidate,
  trainCandidateOnSample,
} from '#shared/training/train.ts';
import { etlOfRecords, startTestAws, type TestAws } from '../support/aws.ts';
import { testRegistry } from '../support/model.ts';
import { LOGINS_SET, TICKETS_LOG_SET } from '../support/other-definition.ts';

/**
 * The retrain gate across a feature change: the candidate (this code's definition) and a champion of
 * another definition are compared on the same held-out customers, each scored with its own features.
 */
let aws: TestAws;
let datasetPrefix: string;
const ROWS = 3_000;

beforeAll(async () => {
  aws = await startTestAws();
  const records = [...generateRecords({ rows: ROWS, seed: 51, asOf: new Date('2026-11-01T00:00:00Z') })];
  datasetPrefix = (await etlOfRecords(aws, 'raw/20261101T000000Z-gate.csv', records)).featurePrefix;
});
afterAll(async () => {
  await aws?.close();
});

const deps = () => ({ registry: testRegistry(aws), s3: aws.clients.s3, featuresBucket: aws.names.features });

const TRAIN_OPTIONS = { datasetUri: 's3://test', parent: null, params: { nTrees: 20 } };

/** Registers a trained candidate and makes it the champion. */
async function championOf(candidate: Candidate, force = false) {
  const { version } = await registerModel(testRegistry(aws), {
    name: 'churn',
    onnx: candidate.onnx,
    metadata: candidate.metadata,
    baseline: candidate.baseline,
  });
  await promote(testRegistry(aws), {
    name: 'churn',
    version,
    reason: force ? 'a champion reading a field the data does not hold' : 'test',
    actor: 'test',
    force,
  });
  return { version, candidate };
}

describe('the retrain gate with a champion of another feature definition', () => {
  it('scores the champion with its own features on the candidate’s held-out customers', async () => {
    // Drawn as a retrain draws (same seed, same labels): the same held-out customers, in other features.
    const wide = await readTrainingSample(
      aws.clients.s3,
      aws.names.features,
      datasetPrefix,
      TICKETS_LOG_SET,
      {
        cap: DEFAULT_MAX_TRAINING_ROWS,
        seed: 42,
        testShare: DEFAULT_TEST_SHARE,
        maxBins: 256,
      },
    );
    const { version: v1 } = await championOf(
      await trainCandidateOnSample(wide, TICKETS_LOG_SET, TRAIN_OPTIONS),
    );
    const champion = await readMetadata(testRegistry(aws), 'churn', v1);
    expect(champion.feature_set.fingerprint).toBe(TICKETS_LOG_SET.fingerprint);
    expect(champion.feature_set.fingerprint).not.toBe(FEATURE_SET.fingerprint);

    const result = await retrain(deps(), {
      name: 'churn',
      datasetPrefix,
      algorithm: 'logistic',
      promotion: 'if-better',
      actor: 'test',
    });
    expect(result.metadata.feature_set.fingerprint).toBe(FEATURE_SET.fingerprint);
    expect(result.champion).toBe(v1);
    // Same data, same split seed: the candidate's held-out rows are the ones v1 was evaluated on when it
    // was trained, scored here with v1's own 21 features.
    expect(result.championAuc).toBe(champion.metrics.auc);
    expect(result.metadata.metrics.champion_auc_same_test).toBe(result.championAuc);
    expect(result.decision).toMatch(new RegExp(`champion ${v1} \\(${result.championAuc!.toFixed(4)}\\)`));
    expect(await getChampion(testRegistry(aws), 'churn')).toBe(result.promoted ? result.version : v1);
  });

  it('refuses to compare with a champion whose features this dataset cannot compute, naming the field', async () => {
    const rows = 200;
    const x = Float32Array.from({ length: rows * LOGINS_SET.count }, (_, i) => (i * 7) % 31);
    const y = Uint8Array.from({ length: rows }, (_, i) => i % 2);
    const data = { featureSet: LOGINS_SET, rows, x, y, customerIds: [], keys: [] };
    await championOf(await trainCandidate(data, TRAIN_OPTIONS), true);
    const error = await trainAndRegister(deps(), {
      name: 'churn',
      datasetPrefix,
      algorithm: 'logistic',
    }).catch((e) => e);
    expect(error).toBeInstanceOf(ChampionNotComparableError);
    expect(error.message).toMatch(
      /champion v\d+ cannot be scored on the candidate's held-out customers: .*logins_30d/,
    );
  });
});
