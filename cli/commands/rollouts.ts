import type { Command } from 'commander';
import { type Output, parseInteger, UserError } from '#cli/output.ts';
import type { RolloutFigures } from '#cli/rollout-figures.ts';
import { CANARY_PERCENT, DEFAULT_BAKE, parseDuration, type RolloutMode } from '#shared/registry/rollout.ts';

const BAKE_HELP = 'how long it runs before its decision is due: 90s, 30m, 1h, 7d, 1h30m';

/**
 * `keel models shadow|canary` (start a rollout), `keel models rollout` (its status) and `keel models
 * rollout abort`.
 */
export function registerRollouts(models: Command, output: Output): void {
  const start =
    (mode: RolloutMode) => (version: string, options: { bake: string; percent?: number; reason: string }) =>
      output.withPlatform(async (ctx) => {
        const { beginRollout, decisionDue, rolloutName, rolloutServing } = await import('#cli/rollout.ts');
        const started = await beginRollout(ctx, output, {
          version,
          mode,
          percent: options.percent,
          bakeSeconds: parseDuration(options.bake, '--bake'),
          reason: options.reason,
        });
        const { rollout } = started;
        output.result(started, () =>
          [
            `started ${rolloutName(rollout)} beside champion ${rollout.champion}`,
            `  now: ${rolloutServing(rollout)}`,
            `  decision due ${decisionDue(rollout, new Date())}, by ` +
              (started.decision.where === 'stage'
                ? `execution ${started.decision.execution}`
                : 'the running keel up (unless a guardrail alarm ends it first)'),
            `  \`keel models rollout\` shows it; \`keel models rollout abort\` ends it; ` +
              `\`keel models promote ${rollout.version}\` promotes it now`,
          ].join('\n'),
        );
      });

  models
    .command('shadow')
    .description(
      'roll a version out in shadow: it scores every request beside the champion, which alone answers',
    )
    .argument('<version>', 'e.g. v4')
    .option('--bake <duration>', BAKE_HELP, DEFAULT_BAKE.shadow)
    .option('--reason <text>', 'why, for the deployment log', 'manual rollout')
    .addHelpText(
      'after',
      `
One rollout runs at a time, against the champion of the moment; the champion keeps answering every
customer. \`keel models rollout\` shows it, \`keel models rollout abort\` ends it, \`keel models promote\`
of the shadow version promotes it.

Examples:
  $ keel models shadow v4
  $ keel models shadow v4 --bake 2h --reason "retrained on November"`,
    )
    .action(start('shadow'));

  models
    .command('canary')
    .description(
      'roll a version out as a canary: it answers a stable share of customers, the champion the rest',
    )
    .argument('<version>', 'e.g. v4')
    .requiredOption(
      '--percent <n>',
      `share of customers it answers, ${CANARY_PERCENT.min}–${CANARY_PERCENT.max}`,
      parseInteger('--percent'),
    )
    .option('--bake <duration>', BAKE_HELP, DEFAULT_BAKE.canary)
    .option('--reason <text>', 'why, for the deployment log', 'manual rollout')
    .addHelpText(
      'after',
      `
A customer's variant is a hash of the rollout id and the customer id: the same customers meet the
canary for the whole rollout, and a new rollout draws a new group. One rollout runs at a time.

Examples:
  $ keel models canary v4 --percent 10
  $ keel models canary v4 --percent 20 --bake 1h30m --reason "XGBoost, +0.02 AUC"`,
    )
    .action(start('canary'));

  const rollout = models
    .command('rollout')
    .description('the running rollout (or how the last one ended); `rollout abort` ends it')
    .addHelpText(
      'after',
      `
While one runs: the requests each variant scored since it started and every guardrail alarm's state
and newest value (from the running platform, or with --stage from CloudWatch).
With --json: {name, rollout, last, figures}, where rollout is the running one (or null), last is the
deployment-log entry that ended the most recent rollout (null while it runs, or before the first) and
figures holds the requests and guardrails (null when none runs or they could not be read).

Examples:
  $ keel models rollout
  $ keel --stage prod --json models rollout
  $ keel models rollout abort --reason "p99 doubled"`,
    )
    .action(async () =>
      output.withPlatform(async (ctx) => {
        const [
          { getAliases, history },
          { decisionDue, lastRolloutEnd, rolloutDecision, rolloutName, rolloutServing },
          { rolloutFigures },
        ] = await Promise.all([
          import('#shared/registry/registry.ts'),
          import('#cli/rollout.ts'),
          import('#cli/rollout-figures.ts'),
        ]);
        const [{ champion, rollout }, log] = await Promise.all([
          getAliases(ctx.registry, ctx.modelName),
          history(ctx.registry, ctx.modelName),
        ]);
        const last = rollout ? null : lastRolloutEnd(log);
        // The figures help; the status stands without them (a stage may deny CloudWatch reads).
        const figures = rollout
          ? await rolloutFigures(output, rollout).catch((error: unknown) => {
              output.info(`per-variant figures not read: ${(error as Error).message}`);
              return null;
            })
          : null;
        output.result({ name: ctx.modelName, rollout: rollout ?? null, last, figures }, () => {
          if (rollout) {
            return [
              `${ctx.modelName}: ${rolloutName(rollout)} against champion ${rollout.champion}`,
              `  mode       ${rollout.mode}: ${rolloutServing(rollout)}`,
              `  version    ${rollout.version}`,
              `  champion   ${rollout.champion}`,
              ...(rollout.percent === null ? [] : [`  percent    ${rollout.percent}%`]),
              `  since      ${rollout.started_at}`,
              `  bake ends  ${decisionDue(rollout, new Date())}`,
              `  reason     ${rollout.reason}`,
              `  actor      ${rollout.actor}`,
              `  rollout    ${rollout.id}`,
              ...(figures ? figureLines(figures) : []),
            ].join('\n');
          }
          return [
            `${ctx.modelName}: no rollout running (champion ${champion ?? 'none'})`,
            last
              ? `  last: ${rolloutDecision(last)}`
              : '  none yet: `keel models shadow V` or `keel models canary V --percent N` starts one',
          ].join('\n');
        });
      }),
    );

  rollout
    .command('abort')
    .description('end the running rollout without promoting it: the champion keeps every customer')
    .option('--reason <text>', 'why, for the deployment log', 'aborted by hand')
    .action(async (options: { reason: string }) =>
      output.withPlatform(async (ctx) => {
        const [{ endRollout, getAliases }, { rolloutName }] = await Promise.all([
          import('#shared/registry/registry.ts'),
          import('#cli/rollout.ts'),
        ]);
        const { rollout: running } = await getAliases(ctx.registry, ctx.modelName);
        if (!running) {
          throw new UserError(
            `no rollout of ${ctx.modelName} is running, so there is nothing to abort (\`keel models rollout\` shows the last one)`,
          );
        }
        const ended = await endRollout(ctx.registry, {
          name: ctx.modelName,
          rolloutId: running.id,
          reason: options.reason,
          actor: ctx.actor,
        });
        output.result(
          ended,
          () =>
            `ended ${rolloutName(running)} without promoting it: ${running.champion} answers every customer`,
        );
      }),
    );
}

/** Requests per variant and each guardrail's state and newest value, under the rollout's record. */
function figureLines(figures: RolloutFigures): string[] {
  const width = Math.max(...figures.guardrails.map((g) => g.id.length));
  return [
    `  requests   champion ${figures.requests.champion.toLocaleString('en-US')}, challenger ${figures.requests.challenger.toLocaleString('en-US')} (since the start)`,
    `  guardrails (${figures.source}):`,
    ...figures.guardrails.map(
      (g) =>
        `    ${g.id.padEnd(width)}  ${g.state.padEnd(17)} ${g.condition}  last ${g.lastValue === null ? '–' : String(Number(g.lastValue.toPrecision(4)))}`,
    ),
  ];
}
