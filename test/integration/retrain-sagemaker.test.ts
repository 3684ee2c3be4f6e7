import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { DescribeTrainingJobCommand, SageMakerClient } from '@aws-sdk/client-sagemaker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPipelineRunner, type PipelineRunner } from '#local/pipelines.ts';
import { localCredentials } from '#shared/aws/clients.ts';
import { LOCAL_CONFIG_VARIABLE } from '#shared/config/keel-config.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { CSV_HEADER, FEATURE_SET, toCsvLine } from '#shared/features/index.ts';
import { offlineDatasetHeader } from '#shared/offline/features-dataset.ts';
import { PIPELINES } from '#shared/pipelines/definitions.ts';
import { getJson } from '#shared/pipelines/run-objects.ts';
import { getChampion, listVersions, readMetadata } from '#shared/registry/registry.ts';
import { builtInXgboostImage, XGBOOST_HYPERPARAMETERS } from '#shared/training/sagemaker.ts';
import { channelOf } from '#shared/training/sagemaker-retrain.ts';
import { startTestAws, TEST_EMULATOR, type TestAws } from '../support/aws.ts';

/**
 * The retrain with `retrain.engine: "sagemaker"`, its synthesized state machine run locally: the
 * channels are written from the offline parts, the training job is created at moto's SageMaker (which
 * trains nothing: the test puts the model the built-in XGBoost algorithm would write, the committed
 * fixture trained on Keel's 20 features, as model.tar.gz at the job's S3ModelArtifacts), then the
 * import converts it, checks parity and goes through the champion gate and registration. The
 * embedded servers have no SageMaker API: there the run must fail naming that, at the training job.
 */
const s = PIPELINES.retrain.states;
const dir = mkdtempSync(join(tmpdir(), 'keel-sagemaker-'));
const configFile = join(dir, 'local.json');
writeFileSync(configFile, JSON.stringify({ retrain: { engine: 'sagemaker' } }));
const previousConfig = process.env[LOCAL_CONFIG_VARIABLE];
process.env[LOCAL_CONFIG_VARIABLE] = configFile;

const fixture = (name: string) => readFileSync(new URL(`../fixtures/xgboost/${name}`, import.meta.url));

/** A model.tar.gz as SageMaker writes it: the model file `xgboost-model` at its root. */
function modelArchive(model: Uint8Array): Buffer {
  const source = mkdtempSync(join(dir, 'model-'));
  writeFileSync(join(source, 'xgboost-model'), model);
  const out = join(source, 'model.tar.gz');
  execFileSync('tar', ['--format=ustar', '-czf', out, '-C', source, 'xgboost-model']);
  return readFileSync(out);
}

let aws: TestAws;
let runner: PipelineRunner;
let sagemaker: SageMakerClient | undefined;
/** The model the next job "writes". */
let nextModel: Buffer = modelArchive(fixture('churn.ubj'));
const jobs: string[] = [];

beforeAll(async () => {
  aws = await startTestAws();
  const endpoint = aws.target.endpoints?.sagemaker;
  if (endpoint) {
    sagemaker = new SageMakerClient({
      region: aws.target.region,
      endpoint,
      credentials: localCredentials(),
    });
  }
  runner = await createPipelineRunner({
    home: aws.home,
    target: aws.target,
    names: aws.names,
    onTrainingJobCreated: async (name) => {
      jobs.push(name);
      const job = await sagemaker!.send(new DescribeTrainingJobCommand({ TrainingJobName: name }));
      const uri = job.ModelArtifacts!.S3ModelArtifacts!;
      const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri)!;
      await aws.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: nextModel }));
    },
  });
  const records = [...generateRecords({ rows: 3000, seed: 18, asOf: new Date('2026-11-01T00:00:00Z') })];
  await aws.clients.s3.send(
    new PutObjectCommand({
      Bucket: aws.names.raw,
      Key: 'raw/20261101T000000Z-sagemaker.csv',
      Body: `${[CSV_HEADER, ...records.map(toCsvLine)].join('\n')}\n`,
    }),
  );
  const etl = await runner.run('etl', { inputKey: 'raw/20261101T000000Z-sagemaker.csv', chunkRows: 1000 });
  expect(etl.status, JSON.stringify(etl.error)).toBe('SUCCEEDED');
}, 240_000);

afterAll(async () => {
  if (previousConfig === undefined) delete process.env[LOCAL_CONFIG_VARIABLE];
  else process.env[LOCAL_CONFIG_VARIABLE] = previousConfig;
  sagemaker?.destroy();
  await runner?.close();
  await aws?.close();
  rmSync(dir, { recursive: true, force: true });
});

const registry = () => ({
  s3: aws.clients.s3,
  dynamo: aws.clients.dynamo,
  bucket: aws.names.models,
  table: aws.names.modelRegistry,
});

async function objects(prefix: string): Promise<string[]> {
  const page = await aws.clients.s3.send(
    new ListObjectsV2Command({ Bucket: aws.names.features, Prefix: prefix }),
  );
  return (page.Contents ?? []).map((o) => o.Key!).sort();
}
async function text(key: string): Promise<string> {
  const object = await aws.clients.s3.send(new GetObjectCommand({ Bucket: aws.names.features, Key: key }));
  return object.Body!.transformToString();
}

interface Candidate {
  version: string;
  auc: number;
  champion: string | null;
  championAuc: number | null;
  promote: boolean;
  reason: string;
}

describe.runIf(TEST_EMULATOR === 'embedded')('the retrain on SageMaker, on the embedded servers', () => {
  it('fails at the training job, saying the embedded servers have no SageMaker API', async () => {
    const run = await runner.run('retrain', {});
    expect(run.status).toBe('FAILED');
    expect(run.failedState).toBe(s.trainingJob);
    expect(run.error?.message).toMatch(/no SageMaker endpoint: .*moto/);
  });
});

// The embedded servers answer S3 and DynamoDB only: the job itself runs where moto answers SageMaker.
describe.runIf(TEST_EMULATOR === 'moto')('the retrain on SageMaker (moto)', () => {
  let first: Candidate;

  it('writes the channels, runs the job as configured, converts, gates and registers the model', async () => {
    const done: string[] = [];
    const run = await runner.run<{ candidate: Candidate }>('retrain', { promotion: 'if-better' }, (state) =>
      done.push(state),
    );
    expect(run.status, JSON.stringify(run.error)).toBe('SUCCEEDED');
    expect(done.filter((state) => state === s.channel)).toHaveLength(3);
    expect(done).toEqual(
      expect.arrayContaining([s.prepareTraining, s.trainingJob, s.importModel, s.promote]),
    );
    expect(done).not.toContain(s.train);
    const job = jobs.at(-1)!;
    expect(job).toMatch(/^keel-local-\d{14}-[0-9a-f]{8}$/);

    // The job as the state machine created it.
    const described = await sagemaker!.send(new DescribeTrainingJobCommand({ TrainingJobName: job }));
    expect(described.AlgorithmSpecification?.TrainingImage).toBe(builtInXgboostImage('us-east-1'));
    expect(described.HyperParameters).toEqual(XGBOOST_HYPERPARAMETERS);
    expect(described.EnableNetworkIsolation).toBe(true);
    expect(described.OutputDataConfig?.KmsKeyId).toMatch(/^arn:aws:kms:us-east-1:\d{12}:key\//);
    expect(described.ResourceConfig).toMatchObject({
      InstanceType: 'ml.m5.xlarge',
      InstanceCount: 1,
      VolumeKmsKeyId: described.OutputDataConfig?.KmsKeyId,
    });
    const bucket = `s3://${aws.names.features}/`;
    expect(described.InputDataConfig?.map((c) => [c.ChannelName, c.DataSource?.S3DataSource?.S3Uri])).toEqual(
      [
        ['train', `${bucket}sagemaker/train/${job}/`],
        ['validation', `${bucket}sagemaker/validation/${job}/`],
      ],
    );
    expect(described.OutputDataConfig?.S3OutputPath).toBe(`${bucket}sagemaker/output/${job}/`);

    // The channels: label first, no header, this code's 20 features; each customer in one channel.
    const train = await objects(`sagemaker/train/${job}/`);
    expect(train).toEqual([0, 1, 2].map((i) => `sagemaker/train/${job}/part-0000${i}.csv`));
    const rows = (await text(train[0]!)).trim().split('\n');
    expect(rows[0]!.split(',')).toHaveLength(1 + FEATURE_SET.count);
    expect(rows.every((row) => /^[01],/.test(row))).toBe(true);
    const heldout = await objects(`sagemaker/heldout/${job}/`);
    const held = (await text(heldout[0]!)).trim().split('\n');
    expect(held[0]).toBe(offlineDatasetHeader(true));
    expect(held.slice(1).every((line) => channelOf(line.split(',')[0]!) === 'heldout')).toBe(true);

    // Registered with the engine, the job and its instances; promoted as the first version.
    first = run.output!.candidate;
    expect(first).toMatchObject({ champion: null, championAuc: null, promote: true });
    const metadata = await readMetadata(registry(), 'churn', first.version);
    expect(metadata.training).toMatchObject({
      engine: 'sagemaker',
      sagemaker: {
        job_name: job,
        image: builtInXgboostImage('us-east-1'),
        instance_type: 'ml.m5.xlarge',
        instance_count: 1,
      },
    });
    expect(metadata.algorithm).toBe('xgboost');
    expect(metadata.training.duration_ms).toBeGreaterThan(0);
    expect(metadata.feature_set.fingerprint).toBe(FEATURE_SET.fingerprint);
    expect(metadata.metrics.onnx_parity_max_abs_diff as number).toBeLessThanOrEqual(1e-6);
    const heldRows = (await Promise.all(heldout.map(text))).reduce(
      (sum, part) => sum + part.trim().split('\n').length - 1,
      0,
    );
    expect(metadata.metrics.test_rows).toBe(heldRows);
    expect(await getChampion(registry(), 'churn')).toBe(first.version);
    // The run's channel counts add up to the dataset.
    const counts = await Promise.all(
      [0, 1, 2].map((i) =>
        getJson<Record<string, number>>(
          aws.clients.s3,
          aws.names.features,
          `sagemaker/runs/${job}/results/part-0000${i}.json`,
        ),
      ),
    );
    const total = counts.reduce((sum, c) => sum + c.train! + c.validation! + c.heldout!, 0);
    expect(metadata.dataset.rows).toBe(total);
    expect(metadata.training.rows).toBe(counts.reduce((sum, c) => sum + c.train!, 0));
  });

  it('compares a second run with the champion on the same held-out customers', async () => {
    const run = await runner.run<{ candidate: Candidate }>('retrain', { promotion: 'if-better' });
    expect(run.status, JSON.stringify(run.error)).toBe('SUCCEEDED');
    const second = run.output!.candidate;
    // The same model on the same held-out customers: the champion scores exactly as the candidate.
    expect(second.champion).toBe(first.version);
    expect(second.championAuc).toBe(second.auc);
    expect(second.auc).toBe(first.auc);
    expect(second.promote).toBe(false);
    expect(second.reason).toMatch(/does not beat champion/);
    expect(await getChampion(registry(), 'churn')).toBe(first.version);
  });

  it('refuses a model trained on other features, naming them, and registers nothing', async () => {
    const before = (await listVersions(registry(), 'churn')).length;
    const json = JSON.parse(fixture('churn.json').toString('utf8'));
    json.learner.feature_names[0] = 'tampered';
    nextModel = modelArchive(new TextEncoder().encode(JSON.stringify(json)));
    const run = await runner.run('retrain', { promotion: 'if-better' });
    expect(run.status).toBe('FAILED');
    expect(run.failedState).toBe(s.importModel);
    expect(run.error?.name).toBe('XgboostModelError');
    expect(run.error?.message).toMatch(
      /feature_names differ .* the model has 'tampered', the feature set 'age'/,
    );
    expect((await listVersions(registry(), 'churn')).length).toBe(before);
  });
});
