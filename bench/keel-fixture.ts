/**
 * A served Keel model on the embedded platform, built with the project's own code: the local S3 and
 * DynamoDB servers in a temp KEEL_HOME, generated customers, a GBDT of the reference FastAPI service's
 * size (100 trees, depth 6, learning rate 0.1, no early stopping) trained by `trainCandidate`, registered
 * and promoted to champion, and the customers loaded into the online store. Used in-process by the
 * handler and cold-start benches and, in a child process, by serve-keel.ts.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type LocalServers, startLocalServers } from '#local/servers.ts';
import { type AwsClients, createAwsClients } from '#shared/aws/clients.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { encodeInto, FEATURE_COUNT, type RawRecord } from '#shared/features/index.ts';
import type { PredictConfig } from '#shared/inference/predict-environment.ts';
import { writeRecords } from '#shared/online-store/store.ts';
import {
  getChampion,
  loadVerifiedModel,
  promote,
  type RegistryDeps,
  readBaseline,
  registerModel,
  startRollout,
} from '#shared/registry/registry.ts';
import { LOCAL_ENVIRONMENT } from '#shared/resources.ts';
import { trainCandidate } from '#shared/training/train.ts';
import { BENCH_CUSTOMER } from './events.ts';
import { removeDirectory, round, trackDirectory } from './util.ts';

export interface KeelFixtureOptions {
  /** Generated customers the model is trained on (80/20 split inside trainCandidate). */
  readonly rows: number;
  /** How many of them (c-000001 …) go into the online store; default all. */
  readonly storeRows?: number;
  readonly seed?: number;
}

export interface KeelFixtureInfo {
  rows: number;
  storeRows: number;
  model: { name: string; version: string; trees: number; onnxBytes: number; auc: number };
  /** Setup phases (ms): generate+encode, train (incl. ONNX export and parity gate), register+promote, store load. */
  setupMs: { generate: number; train: number; register: number; storeLoad: number; total: number };
}

export interface KeelFixture {
  readonly home: string;
  readonly servers: LocalServers;
  readonly clients: AwsClients;
  readonly registry: RegistryDeps;
  readonly config: PredictConfig;
  /** A stored customer's record, as the online store holds it (c-000123 when the store has it). */
  readonly sample: RawRecord;
  readonly info: KeelFixtureInfo;
  /** Stops the servers; `keepHome` leaves the state on disk for another process (removed at exit). */
  close(options?: { keepHome?: boolean }): Promise<void>;
}

export const MODEL_NAME = 'churn';
/** The reference service's XGBClassifier: 100 trees, depth 6, learning rate 0.1; all 100 trees kept. */
export const SEED_SIZED_PARAMS = { nTrees: 100, maxDepth: 6, learningRate: 0.1, earlyStoppingRounds: 0 };

export function predictConfigOf(fixture: Pick<KeelFixture, 'servers'>): PredictConfig {
  return {
    modelsBucket: fixture.servers.names.models,
    registryTable: fixture.servers.names.modelRegistry,
    onlineTable: fixture.servers.names.onlineFeatures,
    modelName: MODEL_NAME,
    refreshIntervalMs: 30_000,
    backend: 'onnx',
    sagemakerEndpoint: undefined,
    maxRecordAgeMs: 30 * 86_400_000,
  };
}

/** A shadow rollout started by {@link startShadowRollout}. */
export interface ShadowRollout {
  readonly champion: string;
  readonly challenger: string;
  readonly rolloutId: string;
}

/**
 * Registers the champion's artifact again and starts a shadow rollout of it: a challenger of exactly the
 * champion's size, so an API serving it pays for a shadow on every request (what the benches measure).
 */
export async function startShadowRollout(registry: RegistryDeps, name = MODEL_NAME): Promise<ShadowRollout> {
  const champion = await getChampion(registry, name);
  if (!champion) throw new Error(`${name} has no champion to shadow`);
  const verified = await loadVerifiedModel(registry, {
    name,
    version: champion,
  });
  const {
    name: _name,
    version: _version,
    artifact: _artifact,
    created_at: _created,
    ...metadata
  } = verified.metadata;
  const challenger = await registerModel(registry, {
    name,
    onnx: verified.onnx,
    metadata: { ...metadata, parent: champion },
    baseline: await readBaseline(registry, name, champion),
  });
  const { rollout } = await startRollout(registry, {
    name,
    version: challenger.version,
    mode: 'shadow',
    bakeSeconds: 30 * 86_400,
    reason: 'benchmark: the cost of a shadow',
    actor: 'bench',
  });
  return { champion, challenger: challenger.version, rolloutId: rollout.id };
}

export async function startKeelFixture(options: KeelFixtureOptions): Promise<KeelFixture> {
  const seed = options.seed ?? 42;
  const storeRows = Math.min(options.storeRows ?? options.rows, options.rows);
  const home = trackDirectory(await mkdtemp(join(tmpdir(), 'keel-bench-home-')));
  let servers: LocalServers | undefined;
  let clients: AwsClients | undefined;
  try {
    const t0 = performance.now();
    servers = await startLocalServers({ home, s3Port: 0, dynamoPort: 0, environment: LOCAL_ENVIRONMENT });
    clients = createAwsClients(servers.target);

    const tGenerate = performance.now();
    const rows = options.rows;
    const x = new Float32Array(rows * FEATURE_COUNT);
    const y = new Uint8Array(rows);
    const customerIds: string[] = new Array(rows);
    const stored: RawRecord[] = [];
    let i = 0;
    for (const { churned, ...record } of generateRecords({ rows, seed, asOf: new Date() })) {
      encodeInto(record, x, i * FEATURE_COUNT);
      y[i] = churned;
      customerIds[i] = record.customer_id;
      if (i < storeRows) stored.push(record);
      i++;
    }
    const tTrain = performance.now();
    const candidate = await trainCandidate(
      { rows, x, y, customerIds, keys: [] },
      { datasetUri: `generated://rows=${rows},seed=${seed}`, parent: null, seed, params: SEED_SIZED_PARAMS },
    );
    const tRegister = performance.now();
    const registry: RegistryDeps = {
      s3: clients.s3,
      dynamo: clients.dynamo,
      bucket: servers.names.models,
      table: servers.names.modelRegistry,
    };
    const metadata = await registerModel(registry, {
      name: MODEL_NAME,
      onnx: candidate.onnx,
      metadata: candidate.metadata,
      baseline: candidate.baseline,
    });
    await promote(registry, {
      name: MODEL_NAME,
      version: metadata.version,
      reason: 'benchmark',
      actor: 'bench',
    });
    const tStore = performance.now();
    await writeRecords({ dynamo: clients.dynamo, table: servers.names.onlineFeatures }, stored);
    const tEnd = performance.now();

    const sample = stored.find((r) => r.customer_id === BENCH_CUSTOMER) ?? stored[0];
    if (!sample) throw new Error('the online store is empty: storeRows must be at least 1');
    const trees = candidate.model.kind === 'tree-ensemble' ? candidate.model.trees.length : 0;
    const fixtureServers = servers;
    const fixtureClients = clients;
    return {
      home,
      servers,
      clients,
      registry,
      config: predictConfigOf({ servers }),
      sample,
      info: {
        rows,
        storeRows,
        model: {
          name: MODEL_NAME,
          version: metadata.version,
          trees,
          onnxBytes: candidate.onnx.byteLength,
          auc: round(candidate.evaluation.auc, 4),
        },
        setupMs: {
          generate: round(tTrain - tGenerate),
          train: round(tRegister - tTrain),
          register: round(tStore - tRegister),
          storeLoad: round(tEnd - tStore),
          total: round(tEnd - t0),
        },
      },
      async close({ keepHome = false } = {}) {
        fixtureClients.s3.destroy();
        fixtureClients.dynamo.destroy();
        await fixtureServers.close();
        if (!keepHome) removeDirectory(home);
      },
    };
  } catch (error) {
    clients?.s3.destroy();
    clients?.dynamo.destroy();
    await servers?.close().catch(() => undefined);
    removeDirectory(home);
    throw error;
  }
}
