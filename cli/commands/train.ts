import type { Command } from 'commander';
import { type Output, UserError } from '#cli/output.ts';
import type { Progress } from '#cli/progress.ts';
import { runPipelineCommand } from '#cli/run-pipeline.ts';
import type { Deployment } from '#shared/registry/registry.ts';

interface RetrainOutput {
  readonly candidate: {
    version: string;
    auc: number;
    champion: string | null;
    championAuc: number | null;
    datasetPrefix: string;
    promote: boolean;
    reason: string;
  };
  readonly deployment?: Deployment;
}

export function registerTrain(program: Command, output: Output): void {
  program
    .command('train')
    .description(
      'run the retrain state machine: train on the newest offline features, compare with the champion, register',
    )
    .option('--promote', 'make the new version the champion whatever it scores')
    .option('--if-better', 'promote only if its AUC beats the champion on the same rows by --margin')
    .option('--margin <auc>', 'AUC gain required by --if-better', Number, 0)
    .option('--require-approval', 'wait for `keel models approve ID` before promoting')
    .option('--algorithm <name>', 'gbdt (gradient-boosted trees) or logistic (baseline)', 'gbdt')
    .option('--dataset <prefix>', 'offline feature prefix (default: the newest dataset)')
    .option('--seed <n>', 'seed of the split and the trainer', Number, 42)
    .option(
      '--max-rows <n>',
      "most rows drawn from the dataset, a stratified sample above it (default: the stage config's retrain.maxTrainingRows)",
      Number,
    )
    .addHelpText(
      'after',
      `
Examples:
  $ keel train                        # register a candidate, keep the champion
  $ keel train --if-better --margin 0.005
  $ keel train --algorithm logistic --promote`,
    )
    .action(
      async (options: {
        promote?: boolean;
        ifBetter?: boolean;
        margin: number;
        requireApproval?: boolean;
        algorithm: string;
        dataset?: string;
        seed: number;
        maxRows?: number;
      }) => {
        if (options.algorithm !== 'gbdt' && options.algorithm !== 'logistic') {
          throw new UserError(`--algorithm must be gbdt or logistic, got "${options.algorithm}"`);
        }
        if (options.promote && options.ifBetter)
          throw new UserError('use either --promote or --if-better, not both');
        // The local runner trains in this process: draw its boosting rounds (rate, ETA up to nTrees).
        const { onTrainingProgress } = await import('#shared/training/train.ts');
        let bar: { progress: Progress | undefined; max: number } | undefined;
        const stopListening = onTrainingProgress((done, total) => {
          bar ??= { progress: output.progress('training', total, 'rounds'), max: total };
          if (done < total) return bar.progress?.update(done);
          // The trainer's last report: done = total = the rounds it ran.
          bar.progress?.finish(done);
          if (done < bar.max) output.info(`  early stopping after ${done} of ${bar.max} rounds`);
          bar = undefined;
        });
        let result: RetrainOutput;
        try {
          result = await runPipelineCommand<RetrainOutput>(output, 'retrain', {
            algorithm: options.algorithm,
            seed: options.seed,
            margin: options.margin,
            promotion: options.promote ? 'always' : options.ifBetter ? 'if-better' : 'never',
            requireApproval: options.requireApproval ?? false,
            maxTrainingRows: options.maxRows ?? (await configuredMaxTrainingRows(output.target().stage)),
            ...(options.dataset ? { datasetPrefix: options.dataset } : {}),
          });
        } finally {
          stopListening();
        }
        const c = result.candidate;
        output.result(result, () =>
          [
            `registered ${c.version} from ${c.datasetPrefix}: held-out AUC ${c.auc.toFixed(4)}`,
            c.championAuc === null
              ? '  no champion to compare with'
              : `  champion ${c.champion} on the same rows: AUC ${c.championAuc.toFixed(4)} (${c.version} ${aucDifference(c.auc, c.championAuc)})`,
            result.deployment
              ? `  promoted: ${result.deployment.from ?? 'none'} → ${result.deployment.to} (${c.reason})`
              : `  not promoted: ${c.reason}`,
          ].join('\n'),
        );
      },
    );
}

/** How much higher or lower the candidate's AUC is, as the four decimals both are printed with. */
function aucDifference(auc: number, championAuc: number): string {
  const difference = Number(auc.toFixed(4)) - Number(championAuc.toFixed(4));
  if (Math.abs(difference) < 5e-5) return 'is level';
  return `is ${Math.abs(difference).toFixed(4)} ${difference > 0 ? 'higher' : 'lower'}`;
}

/**
 * The stage's `retrain.maxTrainingRows`, as its scheduled retrains use it: from its configuration in this
 * checkout (`config/<stage>.json`, or locally the file `KEEL_CONFIG` names), else the default.
 */
async function configuredMaxTrainingRows(stage: string | undefined): Promise<number> {
  const [{ existsSync }, { REPO_ROOT }, config, { LOCAL_ENVIRONMENT }, { DEFAULT_MAX_TRAINING_ROWS }] =
    await Promise.all([
      import('node:fs'),
      import('#lib/paths.ts'),
      import('#shared/config/keel-config.ts'),
      import('#shared/resources.ts'),
      import('#shared/training/limits.ts'),
    ]);
  const name = stage ?? LOCAL_ENVIRONMENT.stage;
  const file = stage ? undefined : config.localConfigFile();
  if (file === undefined && !existsSync(config.stageConfigPath(REPO_ROOT, name)))
    return DEFAULT_MAX_TRAINING_ROWS;
  try {
    return config.loadKeelConfig({ root: REPO_ROOT, stage: name, file }).retrain.maxTrainingRows;
  } catch (error) {
    if (error instanceof config.KeelConfigError)
      throw new UserError(`${error.message} (docs/configuration.md)`);
    throw error;
  }
}
