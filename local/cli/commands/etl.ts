import type { Command } from 'commander';
import { newestRawKey, runEtl } from '#shared/etl/etl.ts';
import { type Output, UserError, withPlatform } from '../output.ts';

export function registerEtl(program: Command, output: Output): void {
  const etl = program.command('etl').description('raw CSV → validated offline features and the online store');
  etl
    .command('run')
    .description('validate a raw file, write its features to S3 and its customers to the online store')
    .option('--input <key>', 'raw object key (default: the newest file under raw/)')
    .option('--max-bad-share <share>', 'fail when more than this share of rows is bad', Number, 0.01)
    .action(async (options: { input?: string; maxBadShare: number }) =>
      withPlatform(async (ctx) => {
        const inputKey = options.input ?? (await newestRawKey(ctx.clients.s3, ctx.names.raw));
        if (!inputKey)
          throw new UserError('the raw bucket is empty: run `keel data generate --rows 100000` first');
        const progress = output.progress('etl');
        const report = await runEtl(ctx.etl, {
          inputKey,
          maxBadRowShare: options.maxBadShare,
          onProgress: (rows) => progress?.update(rows),
        });
        progress?.finish(report.rowsRead);
        output.result(report, () =>
          [
            `etl of s3://${ctx.names.raw}/${report.inputKey}`,
            `  rows ${report.rowsRead}, valid ${report.valid}, quarantined ${report.quarantined}` +
              (report.quarantineKeys.length > 0
                ? ` (s3://${ctx.names.features}/${report.quarantineKeys[0]!.replace(/part-\d+\.jsonl$/, '')})`
                : ''),
            `  offline features: s3://${ctx.names.features}/${report.featurePrefix} (${report.featureParts.length} parts)`,
            `  online store: ${report.onlineWritten} customers`,
          ].join('\n'),
        );
      }),
    );
}
