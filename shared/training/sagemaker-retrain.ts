import { createHash, randomBytes } from 'node:crypto';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { KeelError, ValidationError } from '#shared/errors.ts';
import { FEATURE_SET, type FeatureSet, LABEL_COLUMN } from '#shared/features/index.ts';
import { fileFromTarGz } from '#shared/model/model-archive.ts';
import { importXgboostModel } from '#shared/model/xgboost.ts';
import { float32Text } from '#shared/offline/feature-export.ts';
import {
  datasetParts,
  featureRows,
  newestFeatureDataset,
  OfflineDatasetError,
  readFeatureDataset,
} from '#shared/offline/features-dataset.ts';
import { createObjectStream, type ObjectStream } from '#shared/pipelines/object-stream.ts';
import {
  getResults,
  planReader,
  putJson,
  resultKey,
  runObjectsSchema,
  runPlanOf,
} from '#shared/pipelines/run-objects.ts';
import { buildBaseline } from '#shared/registry/baseline.ts';
import { featureSetMetadata } from '#shared/registry/feature-sets.ts';
import { getChampion } from '#shared/registry/registry.ts';
import { gateAndRegister, type RetrainDeps, type TrainRegisterResult } from './retrain.ts';
import {
  type Channel,
  channelPartKey,
  HELD_OUT_CAP,
  runPrefixes,
  SPLIT,
  trainingJobName,
  XGBOOST_HYPERPARAMETERS,
} from './sagemaker.ts';
import { heldOutMetrics } from './train.ts';

/**
 * The retrain on SageMaker (stage config `retrain.engine: "sagemaker"`) as three tasks around the
 * training job the state machine runs: {@link prepareTraining} plans the run, {@link writeChannels}
 * turns one offline part into the job's CSV channels (one Map item per part), and, once the job is
 * done, {@link importTrainedModel} converts its XGBoost model to Keel's ONNX tree ensemble, checks
 * parity on the held-out customers and goes through the same champion gate and registration as the
 * Lambda trainer. The state carries prefixes, item numbers and counts, never rows.
 */

/** What a run's state carries: its job name (also the run's id), prefixes and S3 URIs. */
export const trainingRunSchema = runObjectsSchema.extend({
  jobName: z.string().min(1).max(63),
  /** When the run was prepared: the import records the time from then as the training's duration. */
  startedAt: z.iso.datetime(),
  datasetPrefix: z.string().min(1),
  heldoutPrefix: z.string().min(1),
  outputPrefix: z.string().min(1),
  /** `s3://` URIs of the train and validation channels and of the job's output, as SageMaker takes them. */
  uris: z.object({ train: z.string(), validation: z.string(), output: z.string() }),
});
export type TrainingRun = z.infer<typeof trainingRunSchema>;

interface TrainingPlan {
  readonly datasetPrefix: string;
  /** The dataset's parts, one Map item each. */
  readonly parts: string[];
  readonly prefixes: ReturnType<typeof runPrefixes>;
}

/** Rows each Map item put in each channel. */
type ChannelCounts = Record<Channel, number>;

export interface PrepareInput {
  readonly stage: string;
  readonly datasetPrefix?: string;
}

/** Names the run and its job, lists the dataset's parts into the run's plan; the Map's items. */
export async function prepareTraining(
  deps: RetrainDeps,
  input: PrepareInput,
): Promise<{ run: TrainingRun; items: number[] }> {
  const datasetPrefix = input.datasetPrefix ?? (await newestFeatureDataset(deps.s3, deps.featuresBucket));
  if (!datasetPrefix) {
    throw new ValidationError('no offline features to train on: run the ETL first', [
      { path: 'datasetPrefix', message: 'none found' },
    ]);
  }
  const parts = await datasetParts(deps.s3, deps.featuresBucket, datasetPrefix);
  const startedAt = new Date();
  const jobName = trainingJobName(input.stage, startedAt, randomBytes(4).toString('hex'));
  const prefixes = runPrefixes(jobName);
  const plan: TrainingPlan = { datasetPrefix, parts: parts.keys, prefixes };
  const { run, items } = runPlanOf(plan, 'parts', prefixes.run);
  await putJson(deps.s3, deps.featuresBucket, run.planKey, plan);
  const uri = (prefix: string) => `s3://${deps.featuresBucket}/${prefix}`;
  return {
    run: {
      itemCount: run.itemCount,
      planKey: run.planKey,
      resultsPrefix: run.resultsPrefix,
      jobName,
      startedAt: startedAt.toISOString(),
      datasetPrefix,
      heldoutPrefix: prefixes.heldout,
      outputPrefix: prefixes.output,
      uris: {
        train: uri(prefixes.train),
        validation: uri(prefixes.validation),
        output: uri(prefixes.output),
      },
    },
    items,
  };
}

/**
 * The channel of a customer: a hash of the id, not the row's position, so the split does not move when
 * parts are cut differently and a customer is held out in every run.
 */
export function channelOf(customerId: string): Channel {
  const u = createHash('sha256').update(customerId).digest().readUInt32BE(0) / 2 ** 32;
  if (u < SPLIT.heldOut) return 'heldout';
  return u < SPLIT.heldOut + SPLIT.validation ? 'validation' : 'train';
}

/**
 * One row as the built-in XGBoost reads CSV: the label first, no header, then the features as text
 * that parses back to the same float32 (XGBoost reads float32); empty for a missing value.
 */
export function xgboostCsvRow(label: number, features: Float32Array): string {
  let line = String(label);
  for (const value of features) line += Number.isNaN(value) ? ',' : `,${float32Text(value)}`;
  return line;
}

/** Text buffered per channel before a write: few writes, flat memory. */
const WRITE_BYTES = 256 * 1024;

const readPlan = planReader<TrainingPlan>();

/**
 * One Map item: the rows of part `index`, with this code's features, into the train and validation
 * channels (XGBoost CSV) and the held-out rows as they are stored (raw records under the part's
 * header, so a champion of another feature set computes its own features from them). A channel without
 * rows gets no object. Its counts go to the run's results.
 */
export async function writeChannels(
  deps: RetrainDeps,
  run: TrainingRun,
  index: number,
): Promise<{ index: number }> {
  const plan = await readPlan(deps.s3, deps.featuresBucket, run.planKey);
  const key = plan.parts[index];
  if (key === undefined)
    throw new ValidationError(`the run has no part ${index}`, [{ path: 'index', message: 'out of range' }]);
  const channels: Channel[] = ['train', 'validation', 'heldout'];
  const streams = {} as Record<Channel, ObjectStream>;
  const counts: ChannelCounts = { train: 0, validation: 0, heldout: 0 };
  const pending: ChannelCounts = { train: 0, validation: 0, heldout: 0 };
  const text = { train: '', validation: '', heldout: '' } as Record<Channel, string>;
  const flush = async (channel: Channel) => {
    streams[channel] ??= createObjectStream(deps.s3, {
      bucket: deps.featuresBucket,
      key: channelPartKey(plan.prefixes[channel], index),
      contentType: 'text/csv',
    });
    await streams[channel].write(text[channel]);
    text[channel] = '';
    pending[channel] = 0;
  };
  try {
    const parts = { bucket: deps.featuresBucket, prefix: plan.datasetPrefix, keys: [key] };
    for await (const row of featureRows(deps.s3, parts, FEATURE_SET)) {
      if (row.label === undefined) {
        throw new OfflineDatasetError(
          `s3://${deps.featuresBucket}/${key} has no ${LABEL_COLUMN} column: a training job learns from labeled rows only`,
        );
      }
      const channel = channelOf(row.customerId);
      if (channel === 'heldout') {
        if (counts.heldout === 0) text.heldout += `${row.header}\n`;
        text.heldout += `${row.line}\n`;
      } else {
        text[channel] += `${xgboostCsvRow(row.label, row.features)}\n`;
      }
      counts[channel]++;
      pending[channel]++;
      if (text[channel].length >= WRITE_BYTES) await flush(channel);
    }
    for (const channel of channels) if (pending[channel] > 0) await flush(channel);
    for (const channel of channels) await streams[channel]?.end();
  } catch (error) {
    await Promise.all(channels.map((channel) => streams[channel]?.abort(error as Error)));
    throw error;
  }
  await putJson(deps.s3, deps.featuresBucket, resultKey(run, index), counts);
  return { index };
}

/** What the state machine keeps of DescribeTrainingJob (its ResultSelector). */
export const trainingJobSchema = z.object({
  name: z.string().min(1),
  modelArtifacts: z.string().min(1),
  image: z.string().min(1),
  instanceType: z.string().min(1),
  instanceCount: z.number().int().min(1),
});
export type TrainingJobSummary = z.infer<typeof trainingJobSchema>;

/** The job's model cannot be imported: absent where it should be, or not this run's. */
export class TrainedModelError extends KeelError {
  readonly code = 'ValidationError';
}

/** The file the built-in XGBoost algorithm saves its model as, inside model.tar.gz. */
export const XGBOOST_MODEL_FILE = 'xgboost-model';

/**
 * The first {@link HELD_OUT_CAP} held-out rows (parts in key order) in `featureSet`'s features; `rows`
 * reads exactly that many, as the candidate read them, for the champion.
 */
async function readHeldOut(deps: RetrainDeps, run: TrainingRun, featureSet: FeatureSet, rows?: number) {
  if (rows !== undefined) {
    const only = Uint32Array.from({ length: rows }, (_, i) => i);
    return readFeatureDataset(deps.s3, deps.featuresBucket, run.heldoutPrefix, featureSet, { rows: only });
  }
  const parts = await datasetParts(deps.s3, deps.featuresBucket, run.heldoutPrefix);
  const x = new Float32Array(HELD_OUT_CAP * featureSet.count);
  const y = new Uint8Array(HELD_OUT_CAP);
  let count = 0;
  for await (const row of featureRows(deps.s3, parts, featureSet)) {
    x.set(row.features, count * featureSet.count);
    y[count] = row.label ?? 0;
    if (++count === HELD_OUT_CAP) break;
  }
  return { rows: count, x: x.subarray(0, count * featureSet.count), y: y.subarray(0, count) };
}

/** `s3://bucket/key` → key, when it is an object under `prefix` of `bucket`. */
function keyUnder(uri: string, bucket: string, prefix: string): string | undefined {
  const head = `s3://${bucket}/${prefix}`;
  return uri.startsWith(head) && !uri.includes('/../') ? uri.slice(`s3://${bucket}/`.length) : undefined;
}

export interface ImportInput {
  readonly name: string;
  readonly run: TrainingRun;
  readonly job: TrainingJobSummary;
}

/**
 * The finished job's model into the registry: model.tar.gz → `xgboost-model` → Keel's ONNX tree
 * ensemble, whose scores must equal an independent evaluation of the XGBoost trees on the held-out
 * rows (importXgboostModel refuses the model otherwise, and one trained on other features) → the held-out
 * evaluation → the champion gate on the same customers → registered with the job's engine, name and
 * instances in its metadata. Never promotes.
 */
export async function importTrainedModel(
  deps: RetrainDeps,
  input: ImportInput,
): Promise<TrainRegisterResult> {
  const { run, job } = input;
  const key = keyUnder(job.modelArtifacts, deps.featuresBucket, run.outputPrefix);
  if (!key) {
    throw new TrainedModelError(
      `training job ${job.name} wrote its model to ${job.modelArtifacts}, not under s3://${deps.featuresBucket}/${run.outputPrefix}`,
    );
  }
  const object = await deps.s3
    .send(new GetObjectCommand({ Bucket: deps.featuresBucket, Key: key }))
    .catch((error: unknown) => {
      if ((error as { name?: string }).name !== 'NoSuchKey') throw error;
      throw new TrainedModelError(
        `training job ${job.name} completed, but ${job.modelArtifacts} is not there`,
        {
          cause: error,
        },
      );
    });
  const archive = await object.Body!.transformToByteArray();
  const counts = (
    await getResults<ChannelCounts>(deps.s3, deps.featuresBucket, run, (index) => {
      return new TrainedModelError(
        `the run's part ${index} wrote no channel counts: was it prepared by this run?`,
      );
    })
  ).reduce((sum, c) => ({
    train: sum.train + c.train,
    validation: sum.validation + c.validation,
    heldout: sum.heldout + c.heldout,
  }));
  const held = await readHeldOut(deps, run, FEATURE_SET);
  if (held.rows === 0) {
    throw new TrainedModelError(
      `no held-out rows under s3://${deps.featuresBucket}/${run.heldoutPrefix}: nothing to check the model on`,
    );
  }
  const imported = await importXgboostModel(fileFromTarGz(archive, XGBOOST_MODEL_FILE), {
    featureSet: FEATURE_SET,
    rows: { x: held.x, count: held.rows },
  });
  // The parity check scored the held-out rows with the ONNX model already.
  const { scores } = imported;
  const threshold = 0.5;
  const { evaluation, metrics } = heldOutMetrics(held.y, scores, threshold, imported.parityMaxDiff);
  const champion = (await getChampion(deps.registry, input.name)) ?? null;
  return gateAndRegister(deps, {
    name: input.name,
    champion,
    candidate: {
      onnx: imported.onnx,
      auc: evaluation.auc,
      heldOutLabels: held.y,
      metadata: {
        algorithm: 'xgboost',
        dataset: {
          uri: `s3://${deps.featuresBucket}/${run.datasetPrefix}`,
          rows: counts.train + counts.validation + counts.heldout,
        },
        feature_set: featureSetMetadata(FEATURE_SET),
        metrics: { ...metrics, held_out_rows_total: counts.heldout },
        threshold,
        training: {
          rows: counts.train,
          params: { ...XGBOOST_HYPERPARAMETERS, ...imported.params, validation_rows: counts.validation },
          // The run's wall time from prepare to import: writing the channels, provisioning, training.
          duration_ms: Math.max(0, Date.now() - Date.parse(run.startedAt)),
          engine: 'sagemaker',
          sagemaker: {
            job_name: job.name,
            image: job.image,
            instance_type: job.instanceType,
            instance_count: job.instanceCount,
          },
        },
        parent: champion,
      },
      // Feature distributions and scores over the held-out rows: the job's training rows stay in S3.
      baseline: buildBaseline(FEATURE_SET, held.x, held.rows, scores, threshold),
    },
    heldOut: async (featureSet) => (await readHeldOut(deps, run, featureSet, held.rows)).x,
  });
}
