import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { decideApproval, listApprovals } from '#local/approvals.ts';
import { keelHome } from '#local/runtime.ts';
import { FEATURE_SET } from '#shared/features/index.ts';
import {
  getChampion,
  history,
  listVersions,
  promote,
  readMetadata,
  rollback,
} from '#shared/registry/registry.ts';
import { type Output, withPlatform } from '../output.ts';

export function registerModels(program: Command, output: Output): void {
  const models = program.command('models').description('the model registry: versions, champion, history');

  models
    .command('list')
    .description('registered versions, the champion marked with *')
    .action(async () =>
      withPlatform(async (ctx) => {
        const [versions, champion] = await Promise.all([
          listVersions(ctx.registry, ctx.modelName),
          getChampion(ctx.registry, ctx.modelName),
        ]);
        output.result({ name: ctx.modelName, champion: champion ?? null, versions }, () =>
          versions.length === 0
            ? `${ctx.modelName}: no versions yet (run \`keel train\`)`
            : [
                'version  champion  created_at                algorithm            auc     logloss  fingerprint',
                ...versions.map(
                  (v) =>
                    `${v.version.padEnd(8)} ${(v.version === champion ? '*' : '').padEnd(9)} ${v.created_at.padEnd(25)} ` +
                    `${v.algorithm.padEnd(20)} ${v.metrics.auc.toFixed(4)}  ${v.metrics.logloss.toFixed(4)}   ` +
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
      withPlatform(async (ctx) => {
        const metadata = await readMetadata(ctx.registry, ctx.modelName, version);
        output.result(metadata, () => JSON.stringify(metadata, null, 2));
      }),
    );

  models
    .command('promote')
    .description('make a version the champion (conditional on the champion you last saw)')
    .argument('<version>', 'e.g. v3')
    .option('--reason <text>', 'why, for the deployment log', 'manual promotion')
    .option('--force', 'promote even if it was trained on another feature set (needs --reason)')
    .action(async (version: string, options: { reason: string; force?: boolean }) =>
      withPlatform(async (ctx) => {
        const move = await promote(ctx.registry, {
          name: ctx.modelName,
          version,
          featureFingerprint: FEATURE_SET.fingerprint,
          reason: options.force && options.reason === 'manual promotion' ? '' : options.reason,
          actor: ctx.actor,
          force: options.force,
        });
        output.result(move, () => `champion of ${ctx.modelName}: ${move.from ?? 'none'} → ${move.to}`);
      }),
    );

  models
    .command('rollback')
    .description('move the champion back to the previous one in the deployment log')
    .option('--reason <text>', 'why, for the deployment log', 'manual rollback')
    .action(async (options: { reason: string }) =>
      withPlatform(async (ctx) => {
        const move = await rollback(ctx.registry, {
          name: ctx.modelName,
          reason: options.reason,
          actor: ctx.actor,
          featureFingerprint: FEATURE_SET.fingerprint,
        });
        output.result(move, () => `rolled back ${ctx.modelName}: ${move.from} → ${move.to}`);
      }),
    );

  models
    .command('history')
    .description('the deployment log: every move of the champion, oldest first')
    .action(async () =>
      withPlatform(async (ctx) => {
        const log = await history(ctx.registry, ctx.modelName);
        output.result({ name: ctx.modelName, history: log }, () =>
          log.length === 0
            ? `${ctx.modelName}: never promoted`
            : log
                .map(
                  (d) =>
                    `#${d.seq} ${d.at} ${d.kind.padEnd(8)} ${(d.from ?? 'none').padStart(4)} → ${d.to.padEnd(4)} ` +
                    `by ${d.actor}: ${d.reason}`,
                )
                .join('\n'),
        );
      }),
    );

  models
    .command('approvals')
    .description('promotions waiting for a human decision (retrain started with --require-approval)')
    .action(async () => {
      const requests = await listApprovals(keelHome());
      output.result({ approvals: requests }, () =>
        requests.length === 0
          ? 'no approval requests'
          : requests
              .map(
                (r) =>
                  `${r.id}  ${r.status.padEnd(8)} ${r.requestedAt}  ${r.subject}${r.by ? ` (by ${r.by})` : ''}`,
              )
              .join('\n'),
      );
    });

  for (const [verb, approved] of [
    ['approve', true],
    ['reject', false],
  ] as const) {
    models
      .command(verb)
      .description(
        `${verb} a pending promotion; the waiting retrain execution then ${approved ? 'promotes' : 'keeps the champion'}`,
      )
      .argument('<id>', 'the approval id (see `keel models approvals`)')
      .option('--note <text>', 'why, recorded with the decision')
      .action(async (id: string, options: { note?: string }) => {
        const decided = await decideApproval(keelHome(), id, {
          approved,
          by: `${userInfo().username}@cli`,
          note: options.note,
        });
        output.result(decided, () => `${id}: ${decided.status}`);
      });
  }
}
