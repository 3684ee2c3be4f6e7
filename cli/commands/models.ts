import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { registerRollouts } from '#cli/commands/rollouts.ts';
import { type Output, UserError } from '#cli/output.ts';
import type { PlatformContext } from '#local/platform-context.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { encodeInto, FEATURE_COUNT, FEATURE_SET } from '#shared/features/index.ts';
import type { CheckRows } from '#shared/registry/external.ts';
import type { Deployment } from '#shared/registry/registry.ts';
import type { Rollout } from '#shared/registry/rollout.ts';

// Loaded by the actions that use them: `keel --help` and the other commands load no AWS SDK.
const registryModule = () => import('#shared/registry/registry.ts');
const rolloutModule = () => import('#cli/rollout.ts');

export function registerModels(program: Command, output: Output): void {
  const models = program
    .command('models')
    .description('the model registry: versions, champion, rollouts, history')
    .addHelpText(
      'after',
      `
Examples:
  $ keel models list
  $ keel models show v3
  $ keel models canary v4 --percent 10 --bake 1h
  $ keel models rollout
  $ keel models promote v3 --reason "better AUC on November"
  $ keel models rollback --reason "latency regression"`,
    );

  models
    .command('list')
    .description('registered versions, the champion marked with *, a rollout challenger with its mode')
    .action(async () =>
      output.withPlatform(async (ctx) => {
        const [{ listVersions, getAliases }, { rolloutLabel }] = await Promise.all([
          registryModule(),
          rolloutModule(),
        ]);
        const [versions, { champion, rollout }] = await Promise.all([
          listVersions(ctx.registry, ctx.modelName),
          getAliases(ctx.registry, ctx.modelName),
        ]);
        // Externally trained models bring algorithm names of any length: size that column to fit.
        const width = Math.max('algorithm'.length, ...versions.map((v) => v.algorithm.length)) + 1;
        const challenger = (version: string) => (rollout?.version === version ? rolloutLabel(rollout) : '');
        output.result(
          { name: ctx.modelName, champion: champion ?? null, rollout: rollout ?? null, versions },
          () =>
            versions.length === 0
              ? `${ctx.modelName}: no versions yet (run \`keel train\`)`
              : [
                  `version  champion  rollout     created_at                ${'algorithm'.padEnd(width)}auc     logloss  fingerprint`,
                  ...versions.map(
                    (v) =>
                      `${v.version.padEnd(8)} ${(v.version === champion ? '*' : '').padEnd(9)} ` +
                      `${challenger(v.version).padEnd(11)} ${v.created_at.padEnd(25)} ` +
                      `${v.algorithm.padEnd(width)}${v.metrics.auc.toFixed(4)}  ${v.metrics.logloss.toFixed(4)}   ` +
                      `${v.fingerprint === FEATURE_SET.fingerprint ? 'current' : v.fingerprint.slice(0, 19)}`,
                  ),
                ].join('\n'),
        );
      }),
    );

  models
    .command('show')
    .description('metadata.json of a version')
    .argument('<version>', 'e.g. v3')
    .action(async (version: string) =>
      output.withPlatform(async (ctx) => {
        const { readMetadata } = await registryModule();
        const metadata = await readMetadata(ctx.registry, ctx.modelName, version);
        output.result(metadata, () => JSON.stringify(metadata, null, 2));
      }),
    );

  models
    .command('promote')
    .description('make a version the champion (conditional on the champion you last saw)')
    .argument('<version>', 'e.g. v3')
    .option('--reason <text>', 'why, for the deployment log', 'manual promotion')
    .option(
      '--force',
      'promote even if it reads a raw field the online store does not hold yet (needs --reason)',
    )
    .addHelpText(
      'after',
      `
During a rollout, promoting its challenger promotes it and ends the rollout in the same write;
promoting any other version ends the rollout first (with --json, that log entry is endedRollout).`,
    )
    .action(async (version: string, options: { reason: string; force?: boolean }, command: Command) =>
      output.withPlatform(async (ctx) => {
        // --force needs a reason of the user's own: the default one does not count.
        if (options.force && command.getOptionValueSource('reason') === 'default') {
          throw new UserError('a forced promotion needs a reason: add --reason TEXT');
        }
        const [{ getAliases, promote }, { endRolloutFor, rolloutName, storeFieldsOf }] = await Promise.all([
          registryModule(),
          rolloutModule(),
        ]);
        const [{ rollout }, storeFields] = await Promise.all([
          getAliases(ctx.registry, ctx.modelName),
          storeFieldsOf(ctx),
        ]);
        const challenger = rollout?.version === version ? rollout : undefined;
        const endedRollout =
          rollout && !challenger
            ? await endRolloutFor(ctx, rollout, {
                version,
                force: options.force,
                reason: `ended by the promotion of ${version}`,
                storeFields,
              })
            : null;
        const move = await promote(ctx.registry, {
          name: ctx.modelName,
          version,
          reason: options.reason,
          actor: ctx.actor,
          force: options.force,
          storeFields,
          rollout: challenger,
        });
        output.result({ ...move, endedRollout }, () =>
          [
            `champion of ${ctx.modelName}: ${move.from ?? 'none'} → ${move.to}`,
            ...rolloutNotes(rolloutName, rollout, endedRollout),
          ].join('\n'),
        );
      }),
    );

  models
    .command('rollback')
    .description('move the champion back to the previous one in the deployment log')
    .option('--reason <text>', 'why, for the deployment log', 'manual rollback')
    .addHelpText(
      'after',
      `
A running rollout is ended first (with --json, that log entry is endedRollout).`,
    )
    .action(async (options: { reason: string }) =>
      output.withPlatform(async (ctx) => {
        const [
          { getAliases, history, rollback, rollbackTarget },
          { endRolloutFor, rolloutName, storeFieldsOf },
        ] = await Promise.all([registryModule(), rolloutModule()]);
        const [{ rollout }, storeFields] = await Promise.all([
          getAliases(ctx.registry, ctx.modelName),
          storeFieldsOf(ctx),
        ]);
        // With nowhere to roll back to, rollback refuses by itself and the rollout keeps running.
        const target = rollout && rollbackTarget(await history(ctx.registry, ctx.modelName));
        const endedRollout =
          rollout && target
            ? await endRolloutFor(ctx, rollout, {
                version: target,
                reason: `ended by the rollback to ${target}`,
                storeFields,
              })
            : null;
        const move = await rollback(ctx.registry, {
          name: ctx.modelName,
          reason: options.reason,
          actor: ctx.actor,
          storeFields,
        });
        output.result({ ...move, endedRollout }, () =>
          [
            `rolled back ${ctx.modelName}: ${move.from} → ${move.to}`,
            ...rolloutNotes(rolloutName, rollout, endedRollout),
          ].join('\n'),
        );
      }),
    );

  models
    .command('history')
    .description('the deployment log: every move of the champion and every rollout, oldest first')
    .addHelpText(
      'after',
      `
A rollout-start goes from the champion to its challenger, a rollout-end from the challenger back to
the champion that keeps every customer; entries made by a rollout show its mode and id.`,
    )
    .action(async () =>
      output.withPlatform(async (ctx) => {
        const [{ history }, { rolloutLabel }] = await Promise.all([registryModule(), rolloutModule()]);
        const log = await history(ctx.registry, ctx.modelName);
        output.result({ name: ctx.modelName, history: log }, () =>
          historyText(rolloutLabel, ctx.modelName, log),
        );
      }),
    );

  registerRollouts(models, output);

  models
    .command('register')
    .description('check and register a model trained outside Keel (ONNX, or an XGBoost model file)')
    .option('--onnx <file>', 'the exported model: one float [N, F] input, class probabilities out')
    .option('--xgboost <file>', 'instead of --onnx: an XGBoost model (JSON or UBJSON, binary:logistic)')
    .requiredOption('--metadata <file>', 'metadata.json without version, artifact and created_at')
    .option(
      '--dataset <prefix>',
      'offline features to check it on and compute its drift baseline (default: newest)',
    )
    .option('--baseline <file>', 'a baseline.json to use instead of one computed from offline features')
    .option('--force', 'register even if it was trained on another feature set (needs --reason)')
    .option('--reason <text>', 'why --force, recorded in metadata.external.forced')
    .option('--promote', 'make it the champion once registered')
    .addHelpText(
      'after',
      `
Keel rewrites a ZipMap output to its probability tensor and a double input to float; everything else
is checked: one input of F = ${FEATURE_COUNT} features in feature-set order, a class-1 probability in [0, 1] on
every row of the offline features. An XGBoost model (save_model's .json or .ubj) is converted to ONNX
here, its scores checked against its own trees on those rows; its metadata may leave out algorithm.
See docs/bring-your-own-model.md.

Example:
  $ keel models register --onnx xgb.onnx --metadata xgb.metadata.json
  $ keel models register --xgboost model.json --metadata xgb.metadata.json
  $ keel models register --onnx old.onnx --metadata old.json --force --reason "A/B against v7"`,
    )
    .action(
      async (options: {
        onnx?: string;
        xgboost?: string;
        metadata: string;
        dataset?: string;
        baseline?: string;
        force?: boolean;
        reason?: string;
        promote?: boolean;
      }) => {
        const [flag, modelFile] = modelFileOption(options);
        return output.withPlatform(async (ctx) => {
          const [
            { getAliases, getChampion, promote },
            { endRolloutFor, rolloutName, storeFieldsOf },
            { registerExternalModel },
          ] = await Promise.all([registryModule(), rolloutModule(), import('#shared/registry/external.ts')]);
          const [model, metadata, baseline] = await Promise.all([
            readFile(modelFile).catch(fileError(modelFile, flag)),
            readJson(options.metadata, '--metadata'),
            options.baseline === undefined ? undefined : readJson(options.baseline, '--baseline'),
          ]);
          const champion = (await getChampion(ctx.registry, ctx.modelName)) ?? null;
          const rows = await checkRows(ctx, options.dataset, baseline !== undefined);
          output.info(`checking ${modelFile} on ${rows.rows.toLocaleString('en-US')} rows of ${rows.source}`);
          const { metadata: registered, checks } = await registerExternalModel(ctx.registry, {
            name: ctx.modelName,
            ...(flag === '--onnx' ? { onnx: new Uint8Array(model) } : { xgboost: new Uint8Array(model) }),
            metadata,
            featureSet: FEATURE_SET,
            champion,
            rows,
            baseline,
            force: options.force,
            reason: options.reason,
            file: modelFile,
          });
          // Promoting it ends a running rollout first, as `keel models promote` does.
          const storeFields = options.promote ? await storeFieldsOf(ctx) : undefined;
          const rollout = options.promote
            ? (await getAliases(ctx.registry, ctx.modelName)).rollout
            : undefined;
          const endedRollout = rollout
            ? await endRolloutFor(ctx, rollout, {
                version: registered.version,
                reason: `ended by the promotion of ${registered.version}`,
                storeFields,
              })
            : null;
          const move = options.promote
            ? await promote(ctx.registry, {
                name: ctx.modelName,
                version: registered.version,
                reason: `registered from ${modelFile}`,
                actor: ctx.actor,
                storeFields,
              })
            : undefined;
          output.result({ metadata: registered, checks, deployment: move ?? null, endedRollout }, () =>
            [
              `registered ${ctx.modelName} ${registered.version} from ${modelFile} (${registered.algorithm})`,
              `  input '${checks.inputName}', probabilities from '${checks.outputName}'` +
                (checks.changes.length > 0 ? `; ${checks.changes.join('; ')}` : ''),
              `  scored ${checks.scoredRows.toLocaleString('en-US')} rows of ${checks.source}` +
                (checks.auc === null ? '' : `: AUC ${checks.auc.toFixed(4)} on them`),
              move
                ? `  promoted: ${move.from ?? 'none'} → ${move.to}`
                : `  not promoted: \`keel models promote ${registered.version}\` serves it`,
              ...rolloutNotes(rolloutName, rollout, endedRollout),
            ].join('\n'),
          );
        });
      },
    );

  models
    .command('approvals')
    .description('retrains waiting for a person to approve promoting their candidate')
    .option('--all', 'also list answered and expired requests')
    .addHelpText(
      'after',
      `
A retrain started with requireApproval (stage config retrain.requireApproval, or
\`keel train --require-approval\`) asks the stage's approvers (retrain.approval.emails, webhookUrls)
and waits retrain.approval.timeoutHours for an answer; unanswered, it is not promoted.

Examples:
  $ keel --stage prod models approvals
  $ keel --stage prod models approve 3f2a9c1d --note "AUC +0.01 on November, checked the report"
  $ keel --stage prod models reject 3f2a9c1d --note "trained on the broken feed of the 12th"`,
    )
    .action(async (options: { all?: boolean }) =>
      output.withPlatform(async (ctx) => {
        const { listApprovals } = await import('#shared/pipelines/approvals.ts');
        const all = await listApprovals(approvalDeps(ctx));
        const shown = options.all ? all : all.filter((a) => a.status === 'pending');
        output.result({ approvals: shown }, () =>
          shown.length === 0
            ? `no ${options.all ? '' : 'pending '}approval requests`
            : shown
                .map(
                  (a) =>
                    `${a.id}  ${a.status.padEnd(8)} ${a.model} ${a.version.padEnd(5)} requested ${a.requestedAt}, ` +
                    (a.status === 'pending'
                      ? `expires ${a.expiresAt}: ${a.reason}`
                      : `${a.actor ? `by ${a.actor}` : ''}${a.note ? `: ${a.note}` : ''}`),
                )
                .join('\n'),
        );
      }),
    );

  for (const [verb, approved] of [
    ['approve', true],
    ['reject', false],
  ] as const) {
    models
      .command(verb)
      .description(
        `${verb} a pending promotion; the waiting retrain then ${approved ? 'promotes its candidate' : 'keeps the champion'}`,
      )
      .argument('<id>', 'the approval id (see `keel models approvals`)')
      .option('--note <text>', 'why, recorded with the decision (and, when rejecting, sent to the approvers)')
      .action(async (id: string, options: { note?: string }) =>
        output.withPlatform(async (ctx) => {
          // In AWS the waiting execution hears the answer through SendTaskSuccess, and who answered is the
          // caller's IAM identity; locally the run reads the answer from the record.
          const [{ decideApproval }, { callerIdentityArn, sendTaskSuccess }] = await Promise.all([
            import('#shared/pipelines/approvals.ts'),
            import('#cli/stage/approvals.ts'),
          ]);
          const region = output.target().stage ? await ctx.clients.dynamo.config.region() : undefined;
          const decided = await decideApproval(
            approvalDeps(ctx),
            id,
            { approved, note: options.note, actor: region ? await callerIdentityArn(region) : ctx.actor },
            region ? (token, decision) => sendTaskSuccess(region, token, decision) : async () => {},
          );
          output.result(
            decided,
            () => `${id}: ${decided.status} by ${decided.actor}; the retrain of ${decided.version} resumes`,
          );
        }),
      );
  }
}

/** What a promotion or rollback did to the rollout that ran: ended it with the move, or before it. */
function rolloutNotes(
  rolloutName: (rollout: Rollout) => string,
  rollout: Rollout | undefined,
  endedRollout: Deployment | null,
): string[] {
  if (!rollout) return [];
  return endedRollout
    ? [`  ended ${rolloutName(rollout)} first: ${endedRollout.reason}`]
    : [`  ${rolloutName(rollout)} ended with it: ${rollout.version} now answers every customer`];
}

/** The deployment log as aligned columns: seq, time, kind, from → to, rollout, actor and reason. */
function historyText(
  rolloutLabel: (rollout: NonNullable<Deployment['rollout']>) => string,
  name: string,
  log: readonly Deployment[],
): string {
  if (log.length === 0) return `${name}: never promoted`;
  const label = (d: Deployment) => (d.rollout ? `${rolloutLabel(d.rollout)} ${d.rollout.id} ` : '');
  const widest = (values: string[]) => Math.max(...values.map((v) => v.length));
  const seq = widest(log.map((d) => String(d.seq)));
  const kind = widest(log.map((d) => d.kind));
  const version = Math.max(4, widest(log.flatMap((d) => [d.from ?? 'none', d.to])));
  const rollout = widest(log.map(label));
  return log
    .map(
      (d) =>
        `#${String(d.seq).padEnd(seq)} ${d.at} ${d.kind.padEnd(kind)} ${(d.from ?? 'none').padStart(version)} → ` +
        `${d.to.padEnd(version)} ${label(d).padEnd(rollout)}by ${d.actor}: ${d.reason}`,
    )
    .join('\n');
}

const approvalDeps = (ctx: PlatformContext) => ({
  dynamo: ctx.clients.dynamo,
  table: ctx.names.modelRegistry,
});

/** The model file of `keel models register`: exactly one of --onnx and --xgboost. */
function modelFileOption(options: { onnx?: string; xgboost?: string }): ['--onnx' | '--xgboost', string] {
  if (options.onnx !== undefined && options.xgboost !== undefined) {
    throw new UserError('give either --onnx FILE or --xgboost FILE, not both');
  }
  if (options.onnx !== undefined) return ['--onnx', options.onnx];
  if (options.xgboost !== undefined) return ['--xgboost', options.xgboost];
  throw new UserError('give the model to register: --onnx FILE or --xgboost FILE');
}

function fileError(file: string, flag: string) {
  return (error: NodeJS.ErrnoException): never => {
    throw new UserError(`${flag} ${file}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  };
}

async function readJson(file: string, flag: string): Promise<unknown> {
  const text = await readFile(file, 'utf8').catch(fileError(file, flag));
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UserError(`${flag} ${file} is not JSON: ${(error as Error).message}`);
  }
}

/** Synthetic customers to score when there are no offline features but a baseline was given. */
const SAMPLE_ROWS = 1000;

/**
 * The rows an external model is checked on: the offline features (newest dataset, or `prefix`), which
 * also make its drift baseline; without any, generated customers, if the user brings the baseline.
 */
async function checkRows(
  ctx: PlatformContext,
  prefix: string | undefined,
  hasBaseline: boolean,
): Promise<CheckRows> {
  const { newestFeatureDataset, readFeatureDataset } = await import('#shared/offline/features-dataset.ts');
  const dataset = prefix ?? (await newestFeatureDataset(ctx.clients.s3, ctx.names.features));
  if (dataset) {
    const data = await readFeatureDataset(ctx.clients.s3, ctx.names.features, dataset);
    return { x: data.x, rows: data.rows, y: data.y, source: `s3://${ctx.names.features}/${dataset}` };
  }
  if (!hasBaseline) {
    throw new UserError(
      'no offline features to check the model on and compute its drift baseline: run `keel etl run` first, ' +
        'or pass --baseline FILE (a baseline.json of its training data)',
    );
  }
  const x = new Float32Array(SAMPLE_ROWS * FEATURE_COUNT);
  let i = 0;
  for (const record of generateRecords({ rows: SAMPLE_ROWS, seed: 1, asOf: new Date() })) {
    encodeInto(record, x, i++ * FEATURE_COUNT);
  }
  return { x, rows: SAMPLE_ROWS, y: new Uint8Array(0), source: `${SAMPLE_ROWS} generated customers` };
}
