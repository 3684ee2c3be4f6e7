/**
 * The shape of bench/results/latest.json and its Markdown rendering (latest.md, printed at the end of
 * `npm run bench`).
 */
import type { ApiCompute } from '#local/api.ts';
import type { ApiUnderEtlResult } from './api-under-etl.ts';
import type { CliStartResult } from './cli-start.ts';
import type { ColdStartResult, ProcessColdStart } from './cold-start.ts';
import type { DriftBenchResult } from './drift.ts';
import type { HandlerBenchResult } from './handler.ts';
import type { LoadLevel, LoadRun, LoadTool, RandomCustomers } from './http.ts';
import type { KeelFixtureInfo, ShadowRollout } from './keel-fixture.ts';
import type { NewcomerResult } from './newcomer.ts';
import type { PipelinesBenchResult } from './pipelines.ts';
import type { QualityBenchResult } from './quality.ts';
import type { ScoringBenchResult } from './scoring.ts';
import type { SeedModel } from './seed.ts';
import type { TrainingBenchResult } from './training.ts';
import type { TrainingMemoryResult } from './training-memory.ts';
import type { LatencySummary } from './util.ts';

export type Failed = { error: string };
export type Skipped = { skipped: string };
export type Outcome<T> = T | Failed | Skipped;

export const ok = <T extends object>(value: Outcome<T> | undefined): value is T =>
  value !== undefined && !('error' in value) && !('skipped' in value);

export interface ServerInfo {
  url: string;
  pid: number;
  /** Spawn to serving (ms). */
  readyMs: number;
  /** Resident memory after the load (MiB). */
  rssMbAfter: number | null;
}

export interface KeelApiInfo extends ServerInfo {
  compute: ApiCompute;
  /** With `ecs`: the container processes sharing the port (their RSS is in rssMbAfter). */
  workers?: number;
}

/**
 * Keel's HTTP targets with a ratio over the reference service, by compute: by customer id (a random
 * stored customer, features from the online store) and with every field as attributes (like the
 * reference service's body).
 */
export const KEEL_HTTP_TARGETS = {
  'keel-ecs-id': 'Keel ECS `{"customerId"}` (random, store read)',
  'keel-ecs-shadow-id': 'Keel ECS `{"customerId"}`, a shadow rollout running',
  'keel-ecs-attributes': 'Keel ECS `{"customerId","attributes"}`',
  'keel-id': 'Keel Lambda `{"customerId"}` (random, store read)',
  'keel-attributes': 'Keel Lambda `{"customerId","attributes"}`',
} as const;
export type KeelHttpTarget = keyof typeof KEEL_HTTP_TARGETS;

export interface KeelHttpResults {
  /** The one storage process (S3, DynamoDB, rules proxies) both APIs read. */
  storagePid: number;
  /** The `{customerId}` requests name one of these stored customers at random. */
  randomCustomers: RandomCustomers;
  ecs: { server: KeelApiInfo; byCustomerId: Outcome<LoadRun>; byAttributes: Outcome<LoadRun> };
  /**
   * The same ECS compute over a copy of the state in which a shadow rollout runs (a challenger of the
   * champion's size), with a storage process of its own: the stage's grants name one model, so the
   * rollout cannot run beside the plain champion in one registry.
   */
  ecsShadow: {
    server: KeelApiInfo;
    storagePid: number;
    rollout: ShadowRollout;
    byCustomerId: Outcome<LoadRun>;
  };
  lambda: {
    server: KeelApiInfo;
    byCustomerId: Outcome<LoadRun>;
    byAttributes: Outcome<LoadRun>;
    /** GET /health through the same stack: HTTP adapter + middy + Powertools, no store read, no model. */
    health: Outcome<LoadRun>;
  };
}

/** The runs of {@link KEEL_HTTP_TARGETS}. */
export function keelHttpRuns(keel: KeelHttpResults): Record<KeelHttpTarget, Outcome<LoadRun>> {
  return {
    'keel-ecs-id': keel.ecs.byCustomerId,
    'keel-ecs-shadow-id': keel.ecsShadow.byCustomerId,
    'keel-ecs-attributes': keel.ecs.byAttributes,
    'keel-id': keel.lambda.byCustomerId,
    'keel-attributes': keel.lambda.byAttributes,
  };
}

export interface HttpRatio {
  connections: number;
  seedRps: number | null;
  /** Each Keel target's req/s, and that ÷ the reference service's req/s at this level. */
  keel: Record<KeelHttpTarget, { rps: number | null; p99Ms: number | null; overSeed: number | null }>;
}

export interface BenchResults {
  meta: {
    startedAt: string;
    durationS: number;
    mode: 'full' | 'quick';
    command: string;
    machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; platform: string };
    git: { commit: string; dirty: boolean };
    /** os.loadavg() when the run started and ended: other work on the machine shows here. */
    loadAverage: { start: number[]; end: number[] };
    /** Share of the machine's CPU (0–1, all cores) used by processes outside this bench. */
    otherCpu: { run: number | null; bySection: Record<string, number | null> };
    profile: Record<string, unknown>;
  };
  training?: Outcome<TrainingBenchResult>;
  trainingMemory?: Outcome<TrainingMemoryResult>;
  scoring?: Outcome<ScoringBenchResult>;
  drift?: Outcome<DriftBenchResult>;
  quality?: Outcome<QualityBenchResult>;
  pipelines?: Outcome<PipelinesBenchResult>;
  newcomer?: Outcome<NewcomerResult & { loadAverage: number[] }>;
  keelFixture?: Outcome<KeelFixtureInfo>;
  handler?: Outcome<HandlerBenchResult>;
  coldStart?: Outcome<ColdStartResult>;
  cliStart?: Outcome<CliStartResult>;
  http?: Outcome<{
    tool: LoadTool;
    concurrency: number[];
    durationS: number;
    warmupS: number;
    keel: Outcome<KeelHttpResults>;
    seed: Outcome<{ server: ServerInfo & { probability: number }; run: Outcome<LoadRun> }>;
    /** The ECS-compute API under `{customerId}` load while an ETL runs against the same storage. */
    underEtl: Outcome<ApiUnderEtlResult>;
  }>;
  seed?: Outcome<{
    versions: Record<string, string>;
    model: Omit<SeedModel, 'directory' | 'modelPath'>;
    inProcess: Outcome<LatencySummary>;
  }>;
  ratios: {
    http: HttpRatio[];
    /** Reference service in-process p50 (to_vector + predict_proba) ÷ Keel's (encodeFeatures + scoreOne). */
    inProcessSpeedupP50: number | null;
    /** Keel GBDT train time ÷ XGBoost's, and AUC difference (from runTrainingBench). */
    trainTime: number | null;
    aucDifference: number | null;
  };
  /** Targets from the issue, checked against this run. */
  targets: { name: string; target: string; measured: string; met: boolean | null }[];
  problems: string[];
}

const fmt = (value: number | null | undefined, digits = 1) =>
  value === null || value === undefined || Number.isNaN(value)
    ? '–'
    : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

const whyNot = (value: Outcome<object> | undefined) =>
  value === undefined
    ? 'not run'
    : 'error' in value
      ? `failed: ${value.error}`
      : 'skipped' in value
        ? `skipped: ${value.skipped}`
        : '';

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export function toMarkdown(r: BenchResults): string {
  const out: string[] = [];
  const m = r.meta;
  out.push(
    `# Keel benchmarks (${m.mode})`,
    '',
    `${m.startedAt}, ${m.durationS.toFixed(0)} s, \`${m.command}\`, commit ${m.git.commit}${m.git.dirty ? ' (dirty tree)' : ''}. ` +
      `Machine: ${m.machine.cpus} × ${m.machine.cpuModel}, ${m.machine.memoryGiB} GiB, Node ${m.machine.node}, ${m.machine.platform}; ` +
      `load average ${m.loadAverage.start.join(' / ')} at the start; other processes used ${m.otherCpu.run === null ? '–' : `${Math.round(m.otherCpu.run * 100)}%`} of the CPU during the run.`,
    '',
  );

  out.push('## Targets', '');
  out.push(
    table(
      ['target', 'goal', 'measured', 'met'],
      r.targets.map((t) => [t.name, t.target, t.measured, t.met === null ? '–' : t.met ? 'yes' : '**no**']),
    ),
    '',
  );

  out.push('## In-process latency of one prediction (µs, one call at a time)', '');
  if (ok(r.handler)) {
    const h = r.handler;
    const row = (what: string, s: LatencySummary) => [
      what,
      fmt(s.p50Us),
      fmt(s.p90Us),
      fmt(s.p99Us),
      fmt(s.meanUs),
      s.calls.toLocaleString('en-US'),
    ];
    const rows = [
      row('(a) encodeFeatures + onnxruntime scoreOne', h.featuresAndModel),
      row('  encodeFeatures only', h.encodeOnly),
      row('  scoreOne only', h.scoreOneOnly),
      row('  online-store read (getRecords: SDK BatchGetItem → dynalite)', h.storeRead),
      row('    the same request without the SDK (plain HTTP → dynalite)', h.storeReadWithoutSdk),
      row('(b) predictOne {customerId}', h.predictOne),
      row('(b) predictOne {customerId, attributes}', h.predictOneAttributes),
      row('(c) middy handler, API Gateway event {customerId}', h.handler),
      row('(c) middy handler, API Gateway event {customerId, attributes}', h.handlerAttributes),
    ];
    if (ok(r.seed) && ok(r.seed.inProcess)) {
      rows.push(row('reference service: to_vector + predict_proba (Python, same machine)', r.seed.inProcess));
    }
    out.push(table(['what', 'p50', 'p90', 'p99', 'mean', 'calls'], rows), '');
    out.push(
      `Warm-up ${h.warmup} calls per row. Model ${h.model.version}, ${h.model.trees} trees. Same probability from (a), (b), (c): ` +
        `${h.probability.featuresAndModel} / ${h.probability.predictOne} / ${h.probability.handler}; handler non-200: ${h.handlerNon200}.`,
      '',
    );
  } else out.push(whyNot(r.handler), '');

  out.push('## HTTP: Keel local API vs the reference FastAPI service (1 worker)', '');
  if (ok(r.http)) {
    const h = r.http;
    out.push(
      `Load generator: ${h.tool.name} ${h.tool.version} (${h.tool.notes}); ${h.durationS} s per level after a ${h.warmupS} s warm-up at 16 connections; ` +
        'server and load generator on the same cores, 127.0.0.1.',
      '',
    );
    const rows: string[][] = [];
    const seedRps = new Map<number, number>();
    if (ok(h.seed) && ok(h.seed.run)) for (const l of h.seed.run.levels) seedRps.set(l.connections, l.rps);
    const add = (service: string, run: Outcome<LoadRun> | undefined, withRatio: boolean) => {
      if (!ok(run)) {
        rows.push([service, '', whyNot(run), '', '', '', '', '', '']);
        return;
      }
      for (const l of run.levels as LoadLevel[]) {
        const seed = seedRps.get(l.connections);
        rows.push([
          service,
          String(l.connections),
          fmt(l.rps, 0),
          fmt(l.p50Ms, 2),
          fmt(l.p99Ms, 2),
          String(l.non2xx),
          String(l.errors),
          withRatio && seed ? `${fmt(l.rps / seed, 2)}×` : '–',
          l.otherCpuShare === null ? '–' : `${Math.round(l.otherCpuShare * 100)}%`,
        ]);
      }
    };
    if (ok(h.keel)) {
      for (const [name, run] of Object.entries(keelHttpRuns(h.keel)))
        add(KEEL_HTTP_TARGETS[name as KeelHttpTarget], run, true);
      add('Keel Lambda `GET /health` (no store read, no model)', h.keel.lambda.health, false);
    } else rows.push(['Keel', '', whyNot(h.keel), '', '', '', '', '', '']);
    if (ok(h.seed)) add('reference FastAPI `body.json`', h.seed.run, false);
    else rows.push(['reference FastAPI', '', whyNot(h.seed), '', '', '', '', '', '']);
    out.push(
      table(
        [
          'service / body',
          'conns',
          'req/s',
          'p50 ms',
          'p99 ms',
          'non-2xx',
          'errors',
          'Keel/reference req/s',
          'other CPU',
        ],
        rows,
      ),
      '',
      'Levels run interleaved (at each concurrency every target in turn), so outside load hits neighbours alike. ' +
        '"other CPU": share of the machine used by processes outside the bench during that level.',
      '',
    );
    const servers: string[] = [];
    if (ok(h.keel)) {
      const { ecs, lambda, randomCustomers } = h.keel;
      servers.push(
        `Keel: one storage process (S3, DynamoDB, rules proxies; pid ${h.keel.storagePid}) under two APIs; ` +
          `\`{"customerId"}\` names one of the ${randomCustomers.count.toLocaleString('en-US')} stored customers at random per request`,
        `ECS compute: the predict container in ${ecs.server.workers ?? '–'} processes sharing one port, ready ${fmt(ecs.server.readyMs, 0)} ms after spawn, RSS after load ${fmt(ecs.server.rssMbAfter, 0)} MiB (all its processes)`,
        `Lambda compute: the predict function in a Lambda-like environment, ready ${fmt(lambda.server.readyMs, 0)} ms after spawn (handler import + model load), RSS after load ${fmt(lambda.server.rssMbAfter, 0)} MiB (its API process)`,
      );
    }
    if (ok(h.seed))
      servers.push(
        `reference service ready ${fmt(h.seed.server.readyMs, 0)} ms after spawn, RSS after load ${fmt(h.seed.server.rssMbAfter, 0)} MiB, body.json → probability ${h.seed.server.probability}`,
      );
    if (servers.length > 0) out.push(`${servers.join('; ')}.`, '');
  } else out.push(whyNot(r.http), '');

  out.push('## API while the ETL runs (Keel ECS compute, `{"customerId"}` random)', '');
  const underEtl = ok(r.http) ? r.http.underEtl : r.http;
  if (ok(underEtl)) {
    const u = underEtl;
    const row = (
      what: string,
      seconds: number,
      l: Omit<LoadLevel, 'connections' | 'durationS' | 'otherCpuShare' | 'p90Ms'>,
    ) => [
      what,
      fmt(seconds, 1),
      l.requests.toLocaleString('en-US'),
      fmt(l.rps, 0),
      fmt(l.p50Ms, 2),
      fmt(l.p99Ms, 2),
      String(l.non2xx),
      String(l.errors),
    ];
    out.push(
      table(
        ['window', 's', 'requests', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'errors'],
        [
          row('before the ETL (baseline)', u.baseline.durationS, u.baseline),
          row('while the ETL runs', u.duringEtl.seconds, u.duringEtl),
        ],
      ),
      '',
      `c=${u.connections}. ETL state machine over ${u.raw.rows.toLocaleString('en-US')} rows (raw file written beforehand in ${fmt(u.raw.seconds, 1)} s): ` +
        `${u.etl.status}${u.etl.finished ? '' : ` (${u.etl.error})`}, ${fmt(u.etl.seconds, 1)} s, ${fmt(u.etl.rowsPerSecond, 0)} rows/s. ` +
        `Load in ${u.sliceS} s slices while it ran (the last one may end after it); the p99 while it runs is the worst slice's, p50 the slices' median; ` +
        `p99 per slice: ${u.duringEtl.slices.map((l) => fmt(l.p99Ms, 0)).join(', ') || '–'} ms.`,
      '',
    );
  } else out.push(whyNot(underEtl), '');

  out.push('## Cold start', '');
  if (ok(r.coldStart)) {
    const c = r.coldStart;
    out.push(
      `ModelHolder load in a warm process (fresh SDK clients, ${c.holder.runs} runs, model ${(c.modelBytes / 1024).toFixed(0)} KiB): ` +
        `first ${fmt(c.holder.loadMs.first)} ms, median ${fmt(c.holder.loadMs.median)} ms — alias read ${fmt(c.holder.parts.median.aliasMs, 2)} ms, ` +
        `S3 fetch + sha256 + fingerprint ${fmt(c.holder.parts.median.fetchVerifyMs, 2)} ms (sha256 alone ${fmt(c.holder.parts.median.sha256Ms, 2)} ms), ` +
        `onnxruntime session ${fmt(c.holder.parts.median.sessionMs, 2)} ms. ` +
        `With a shadow rollout running (champion ${c.rollout.champion} and challenger ${c.rollout.challenger}, the same trees, loaded side by side): ` +
        `first ${fmt(c.rollout.holder.loadMs.first)} ms, median ${fmt(c.rollout.holder.loadMs.median)} ms.`,
      '',
    );
    const rows: string[][] = [];
    const processes: [string, ColdStartResult['process']['tsx']][] = [
      ...Object.entries(c.process),
      ['tsx, shadow rollout (two models)', c.rollout.tsx],
    ];
    for (const [name, v] of processes) {
      if (!ok(v)) {
        rows.push([name, whyNot(v), '', '', '', '', '', '']);
        continue;
      }
      const p: ProcessColdStart = v.median;
      rows.push([
        `${name} (median of ${v.runs.length})`,
        fmt(p.spawnToFirstAnswerMs, 0),
        fmt(p.bootMs, 0),
        fmt(p.importMs, 0),
        fmt(p.modelLoadMs, 0),
        fmt(p.firstRequestMs, 1),
        fmt(p.secondRequestMs, 1),
        fmt(p.rssMb, 0),
      ]);
    }
    out.push(
      table(
        [
          'fresh process',
          'spawn → 1st answer ms',
          'node boot ms',
          'handler import ms',
          'of which model load ms',
          '1st request ms',
          '2nd request ms',
          'RSS MiB',
        ],
        rows,
      ),
      '',
      'tsx: TypeScript sources through tsx (as `keel up`); bundle: esbuild ESM bundle like the Lambda, run with --enable-source-maps. ' +
        'The handler loads the champion at import (top-level await), so the import includes the model load.',
      '',
    );
  } else out.push(whyNot(r.coldStart), '');

  out.push('## Command line start (spawn → exit, ms)', '');
  if (ok(r.cliStart)) {
    const c = r.cliStart;
    const row = (what: string, t: CliStartResult['help'] | null) =>
      t ? [what, fmt(t.medianMs, 0), fmt(t.minMs, 0)] : [what, 'not run (no platform)', ''];
    out.push(
      table(
        ['command', 'median', 'fastest'],
        [
          row('`keel --help`', c.help),
          row('`keel --json models list`, a platform running', c.modelsList),
          row('`keel --json models list`, nothing running (stops at once)', c.modelsListNothingRunning),
          row('`npx keel --help` (npm starts first)', c.npxHelp),
          row(
            '`keel --help` from the sources through tsx (a source newer than the build)',
            c.helpFromSources,
          ),
          row('`node -e 0` (Node.js alone)', c.node),
        ],
      ),
      '',
      `${c.runs} runs of each after one not counted; \`keel\` is \`node bin/keel.mjs\` on the build \`npm ci\` makes (dist/cli, rebuilt for the run).`,
      '',
    );
  } else out.push(whyNot(r.cliStart), '');

  out.push('## Training (Keel GBDT vs XGBoost, same matrix and split)', '');
  if (ok(r.training)) {
    const t = r.training;
    const x = t.xgboost;
    out.push(
      table(
        ['rows', 'trainer', 'train s', 'held-out AUC'],
        [
          [
            t.rows.toLocaleString('en-US'),
            `Keel GBDT (${t.keel.trees} trees)`,
            fmt(t.keel.trainMs / 1000, 2),
            fmt(t.keel.auc, 4),
          ],
          'skipped' in x
            ? [t.rows.toLocaleString('en-US'), 'XGBoost', x.skipped, '']
            : [
                t.rows.toLocaleString('en-US'),
                `XGBoost ${x.version} (hist, 1 thread)`,
                fmt(x.trainMs / 1000, 2),
                fmt(x.auc, 4),
              ],
        ],
      ),
      '',
    );
    if (t.ratios)
      out.push(
        `Keel/XGBoost train time ${fmt(t.ratios.trainTime, 2)}×, AUC difference ${t.ratios.aucDifference}.`,
        '',
      );
  } else out.push(whyNot(r.training), '');
  if (ok(r.seed)) {
    const s = r.seed.model;
    out.push(
      `The reference service's own train.py on its gen_data.py CSV (${s.rows.toLocaleString('en-US')} rows, served model): XGBoost fit ${fmt(s.xgboost.fitS, 3)} s, AUC ${fmt(s.xgboost.auc, 4)}; ` +
        `HistGB (1 OpenMP thread) fit ${fmt(s.histgb.fitS, 3)} s, AUC ${fmt(s.histgb.auc, 4)}.`,
      '',
    );
  }
  if (ok(r.keelFixture)) {
    const f = r.keelFixture;
    out.push(
      `Keel served model: ${f.rows.toLocaleString('en-US')} generated rows, ${f.model.trees} trees, held-out AUC ${fmt(f.model.auc, 4)}, ONNX ${(f.model.onnxBytes / 1024).toFixed(0)} KiB; ` +
        `setup ${fmt(f.setupMs.total / 1000, 1)} s (train ${fmt(f.setupMs.train / 1000, 1)} s, ${f.storeRows.toLocaleString('en-US')} records to the online store ${fmt(f.setupMs.storeLoad / 1000, 1)} s).`,
      '',
    );
  }

  out.push('## Retraining memory (bench/training-memory.ts: each training in a child process)', '');
  if (ok(r.trainingMemory)) {
    const m = r.trainingMemory;
    out.push(
      table(
        ['path', 'rows in', 'rows used', 'read s', 'train s', 'wall s', 'peak RSS MiB'],
        m.runs.map((run) => [
          run.path === 'bounded' ? `bounded (cap ${fmt(run.cap, 0)})` : 'in-memory',
          fmt(run.rows, 0),
          fmt(run.rowsUsed, 0),
          fmt(run.readS, 1),
          fmt(run.trainS, 1),
          fmt(run.wallS, 1),
          fmt(run.peakRssMb, 0),
        ]),
      ),
      '',
    );
    out.push(
      `Load average (1 min) ${fmt(m.loadAverage.start, 2)} → ${fmt(m.loadAverage.end, 2)} on ${r.meta.machine.cpus} CPUs.`,
      '',
    );
    const w = m.wall;
    if (w) {
      out.push(
        `In-memory path: ${fmt(w.mbPerMillionRows, 0)} MiB and ${fmt(w.sPerMillionRows, 1)} s per million rows (slope of its two largest runs): ` +
          `the ${fmt(w.memoryMb, 0)} MB / ${w.timeoutS / 60} min function runs out of ${w.fails} first, at about ${fmt(w.memoryWallRows, 0)} rows ` +
          `(time at about ${fmt(w.timeWallRows, 0)}). ` +
          (w.bounded
            ? `Bounded path above the cap: memory flat (peak with the most rows in ${fmt(m.boundedGrowth, 2)}× that at the cap), ${fmt(w.bounded.sPerMillionRowsRead, 1)} s per million rows read (two passes): its time limit at about ${fmt(w.bounded.timeWallRows, 0)} rows.`
            : ''),
        '',
      );
    }
  } else out.push(whyNot(r.trainingMemory), '');

  out.push('## Scoring (synthetic 100 × depth-6 trees, 20 features)', '');
  if (ok(r.scoring)) {
    const s = r.scoring;
    out.push(
      table(
        ['what', 'figure'],
        [
          ['onnxruntime session load', `${fmt(s.onnxLoadMs)} ms`],
          [
            `onnxruntime single row (${s.onnxSingleRow.calls.toLocaleString('en-US')} calls)`,
            `p50 ${fmt(s.onnxSingleRow.p50Us)} µs, p99 ${fmt(s.onnxSingleRow.p99Us)} µs`,
          ],
          [
            `onnxruntime batches of ${s.onnxBatch.batchRows}`,
            `${s.onnxBatch.rowsPerSecond.toLocaleString('en-US')} rows/s`,
          ],
          [
            `JS scorer batches of ${s.jsBatch.batchRows}`,
            `${s.jsBatch.rowsPerSecond.toLocaleString('en-US')} rows/s`,
          ],
        ],
      ),
      '',
    );
  } else out.push(whyNot(r.scoring), '');

  out.push('## Drift (computeDrift over a window of generated customers)', '');
  if (ok(r.drift)) {
    const d = r.drift;
    out.push(
      `${fmt(d.rows, 0)} rows × ${d.features} features: ${fmt(d.ms, 1)} ms (${fmt(d.rowsPerSecond, 0)} rows/s).`,
      '',
    );
  } else out.push(whyNot(r.drift), '');

  out.push('## Quality job (bench/quality.ts: captures joined with outcomes, consistency, skew, report)', '');
  if (ok(r.quality)) {
    const q = r.quality;
    out.push(
      `${fmt(q.captureRecords, 0)} captured answers (${fmt(q.answers, 0)} real-time, each with an outcome and an offline row): ` +
        `${fmt(q.ms, 0)} ms (${fmt(q.recordsPerSecond, 0)} records/s), peak RSS ${fmt(q.peakRssMb, 0)} MiB with the embedded S3 in the same process; ` +
        `the skew check's scan of ${fmt(q.offlineRows, 0)} offline rows alone ${fmt(q.offlineScanMs, 0)} ms (${fmt(q.offlineRowsPerSecond, 0)} rows/s).`,
      '',
    );
  } else out.push(whyNot(r.quality), '');

  out.push('## Pipelines (bench/pipelines.ts)', '');
  if (ok(r.pipelines)) {
    const p = r.pipelines;
    const { write, scan } = p.storeRates;
    const phases = (m: typeof p.etlStateMachine) =>
      `plan ${fmt(m.phases.planSeconds, 1)} s, map ${fmt(m.phases.mapSeconds, 1)} s at ${fmt(m.phases.mapRowsPerSecond, 0)} rows/s, finalize ${fmt(m.phases.finalizeSeconds, 1)} s`;
    out.push(
      table(
        ['what', 'rows', 'rows/s', 'of the store', 'peak RSS MiB (this process)'],
        [
          [
            `batch-scoring core: features + onnxruntime (target ${fmt(p.scoringCore.target, 0)} rows/s)`,
            fmt(p.scoringCore.rows, 0),
            fmt(p.scoringCore.rowsPerSecond, 0),
            '',
            fmt(p.scoringCore.peakRssMb, 0),
          ],
          [
            `ETL state machine (${fmt(p.etlStateMachine.seconds, 1)} s: ${phases(p.etlStateMachine)})`,
            fmt(p.etlStateMachine.rows, 0),
            fmt(p.etlStateMachine.rowsPerSecond, 0),
            `${fmt(p.ratios.etlToRawWrite, 2)} of raw writes (target ≥ ${p.ratios.target})`,
            fmt(p.etlStateMachine.peakRssMb, 0),
          ],
          [
            `batch-scoring state machine (${fmt(p.batchStateMachine.seconds, 1)} s: ${phases(p.batchStateMachine)})`,
            fmt(p.batchStateMachine.rows, 0),
            fmt(p.batchStateMachine.rowsPerSecond, 0),
            `${fmt(p.ratios.batchToRawScan, 2)} of raw scans (target ≥ ${p.ratios.target})`,
            fmt(p.batchStateMachine.peakRssMb, 0),
          ],
          [
            `the same, capturing a share of ${p.batchStateMachine.sampledCapture.sampleRate} of the rows (config/prod.json) instead of every row (${fmt(p.batchStateMachine.sampledCapture.seconds, 1)} s)`,
            fmt(p.batchStateMachine.rows, 0),
            fmt(p.batchStateMachine.sampledCapture.rowsPerSecond, 0),
            `${fmt(p.ratios.sampledBatchToRawScan, 2)} of raw scans`,
            '',
          ],
          ...(
            [
              ['raw BatchWriteItem, 25 items', write.proxy, write.direct],
              ['raw Scan, pages of 1,000', scan.proxy, scan.direct],
            ] as const
          ).flatMap(([what, proxy, direct]) => [
            [
              `${what}, through the rules proxy (${proxy.processes} processes × ${proxy.inFlight} in flight)`,
              fmt(proxy.rows, 0),
              fmt(proxy.rowsPerSecond, 0),
              '',
              '',
            ],
            [`${what}, dynalite directly`, fmt(direct.rows, 0), fmt(direct.rowsPerSecond, 0), '', ''],
          ]),
        ],
      ),
      '',
      `${p.note}. CPU seconds of the storage process during the ETL ${fmt(p.etlStateMachine.serverCpuSeconds, 1)}, the batch ${fmt(p.batchStateMachine.serverCpuSeconds, 1)} (${fmt(p.batchStateMachine.sampledCapture.serverCpuSeconds, 1)} capturing a share), the raw writes ${fmt(write.proxy.serverCpuSeconds, 1)} (their clients ${fmt(write.proxy.clientCpuSeconds, 1)}), the raw scans ${fmt(scan.proxy.serverCpuSeconds, 1)} (clients ${fmt(scan.proxy.clientCpuSeconds, 1)}). Peak RSS of each process (the largest of its kind): ${p.processes
        .map(
          (q) =>
            `${q.label} ${fmt(q.peakRssMb, 0)} MiB${q.processes > 1 ? ` (${q.processes})` : ''}, ${fmt(q.cpuSeconds, 1)} CPU s`,
        )
        .join(', ')}.`,
      '',
    );
    if (p.memoryGrowth) {
      const g = p.memoryGrowth;
      out.push(
        table(
          [
            'process',
            `peak RSS MiB, ${fmt(g.baselineRows, 0)} rows`,
            `peak RSS MiB, ${fmt(g.rows, 0)} rows`,
            `growth (target ≤ ${fmt(g.target.maxGrowth * 100, 0)}%, ≤ ${g.target.maxPeakRssMb} MiB)`,
            'of which anonymous (RssAnon), MiB',
          ],
          g.processes.map((q) => [
            q.label,
            fmt(q.baselinePeakRssMb, 0),
            fmt(q.peakRssMb, 0),
            `${fmt(q.growth * 100, 1)}%`,
            `${fmt(q.baselinePeakAnonMb, 0)} → ${fmt(q.peakAnonMb, 0)}`,
          ]),
        ),
        '',
      );
    }
  } else out.push(whyNot(r.pipelines), '');

  out.push('## Newcomer (bench/newcomer.ts: the README quick start from a fresh clone)', '');
  if (ok(r.newcomer)) {
    const n = r.newcomer;
    out.push(
      table(
        ['commit', 'git clone', 'npm ci', 'npm start ready', 'first prediction', 'clone → prediction'],
        [
          [
            n.commit,
            `${n.cloneS} s`,
            `+${n.npmCiS} s`,
            `+${n.startReadyS} s`,
            `+${n.firstPredictionS} s`,
            `**${n.totalS} s**`,
          ],
        ],
      ),
      '',
      `npm cache warm; load average ${n.loadAverage.join(' / ')} at the end.`,
      '',
    );
  } else out.push(whyNot(r.newcomer), '');

  if (r.problems.length > 0) {
    out.push('## Problems in this run', '', ...r.problems.map((p) => `- ${p}`), '');
  }
  return `${out.join('\n')}\n`;
}
