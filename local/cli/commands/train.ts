import type { Command } from 'commander';
import { newestFeatureDataset } from '#shared/offline/features-dataset.ts';
import { retrain } from '#shared/training/retrain.ts';
import { type Output, UserError, withPlatform } from '../output.ts';

export function registerTrain(program: Command, output: Output): void {
  program
    .command('train')
    .description('train on the newest offline features, evaluate against the champion, register a version')
    .option('--promote', 'make the new version the champion (otherwise it is only registered)')
    .option('--algorithm <name>', 'gbdt (gradient-boosted trees) or logistic (baseline)', 'gbdt')
    .option('--dataset <prefix>', 'offline feature prefix (default: the newest dataset)')
    .option('--seed <n>', 'seed of the split and the trainer', Number, 42)
    .action(async (options: { promote?: boolean; algorithm: string; dataset?: string; seed: number }) =>
      withPlatform(async (ctx) => {
        if (options.algorithm !== 'gbdt' && options.algorithm !== 'logistic') {
          throw new UserError(`--algorithm must be gbdt or logistic, got "${options.algorithm}"`);
        }
        const datasetPrefix =
          options.dataset ?? (await newestFeatureDataset(ctx.clients.s3, ctx.names.features));
        if (!datasetPrefix) throw new UserError('no offline features yet: run `keel etl run` first');
        output.info(`training ${options.algorithm} on s3://${ctx.names.features}/${datasetPrefix} …`);
        const result = await retrain(
          { registry: ctx.registry, s3: ctx.clients.s3, featuresBucket: ctx.names.features },
          {
            name: ctx.modelName,
            datasetPrefix,
            algorithm: options.algorithm,
            seed: options.seed,
            promotion: options.promote ? 'always' : 'never',
            actor: ctx.actor,
          },
        );
        const m = result.metadata;
        output.result(result, () =>
          [
            `registered ${m.name} ${m.version} (${m.algorithm}, ${m.training.rows} training rows, ${m.training.duration_ms} ms)`,
            `  held-out AUC ${m.metrics.auc.toFixed(4)}, log loss ${m.metrics.logloss.toFixed(4)}, accuracy ${m.metrics.accuracy.toFixed(4)}`,
            result.championAuc === null
              ? '  no champion to compare with'
              : `  champion ${result.champion} on the same rows: AUC ${result.championAuc.toFixed(4)}`,
            result.promoted
              ? `  promoted: ${result.promoted.from ?? 'none'} → ${result.promoted.to}`
              : `  ${result.decision}`,
          ].join('\n'),
        );
      }),
    );
}
