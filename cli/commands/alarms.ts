import type { Command } from 'commander';
import { type Output, parseInteger, UserError } from '#cli/output.ts';
import type { StateChange } from '#cli/stage/alarms.ts';
import {
  ALARM_EVALUATE_SIGNAL,
  type AlarmStatus,
  type AlarmsSnapshot,
  readAlarmsSnapshot,
} from '#local/alarms.ts';
import { readNotifications } from '#local/notifications.ts';
import { keelHome, requireRuntime } from '#local/running-platform.ts';

/** How long `--evaluate` waits for the running platform's evaluation. */
const EVALUATE_TIMEOUT_MS = 15_000;

/**
 * The alarm table, local or of a deployed stage: one line per alarm, its reason under it while in
 * ALARM, and (a stage's) recent state changes under that.
 */
function alarmLines(
  title: string,
  alarms: readonly (AlarmStatus & { history?: readonly StateChange[] | null })[],
): string[] {
  const width = Math.max(...alarms.map((a) => a.name.length));
  const lines = [title];
  for (const alarm of alarms) {
    const value = alarm.lastValue === null ? '–' : String(Number(alarm.lastValue.toPrecision(4)));
    lines.push(
      alarm.state === 'NOT_EVALUATED'
        ? `  ${alarm.name.padEnd(width)}  ${'–'.padEnd(17)} [${alarm.severity}] ${alarm.reason}`
        : `  ${alarm.name.padEnd(width)}  ${alarm.state.padEnd(17)} [${alarm.severity}] since ${alarm.since ?? '–'}  ${alarm.condition}  last ${value}`,
    );
    if (alarm.state === 'ALARM') lines.push(`      ${alarm.reason}`);
    for (const change of alarm.history ?? []) {
      lines.push(`      ${change.at}  ${change.from ?? '?'} → ${change.to ?? '?'}: ${change.reason}`);
    }
  }
  return lines;
}

/** `keel alarms`: the alarms' states, from the running `keel up` or (--stage) from CloudWatch. */
export function registerAlarms(program: Command, output: Output): void {
  program
    .command('alarms')
    .description(
      'the alarms of the running platform (state, since when, threshold, last value) and recent notifications; ' +
        'with --stage, the deployed alarms from CloudWatch and their recent state changes',
    )
    .option('--evaluate', 'ask the running platform to evaluate every alarm now, then show them')
    .option(
      '--limit <n>',
      'recent notifications shown (with --stage: state changes per alarm)',
      parseInteger('--limit'),
      10,
    )
    .action(async (options: { evaluate?: boolean; limit: number }) => {
      const target = output.target();
      if (target.stage) {
        if (options.evaluate) {
          throw new UserError(
            'CloudWatch evaluates a deployed stage’s alarms itself, every period: drop --evaluate',
          );
        }
        // DescribeAlarmHistory takes 1 to 100 records.
        if (options.limit < 1 || options.limit > 100) {
          throw new UserError(`--limit must be between 1 and 100 with --stage, got ${options.limit}`);
        }
        const [{ readStageAlarms }, { awsTargetFromEnv }] = await Promise.all([
          import('#cli/stage/alarms.ts'),
          import('#shared/aws/clients.ts'),
        ]);
        const snapshot = await readStageAlarms(target.stage, target.region ?? awsTargetFromEnv().region, {
          historyLimit: options.limit,
        });
        output.result(snapshot, () =>
          alarmLines(
            `alarms of stage ${snapshot.stage} in ${snapshot.region} (CloudWatch), read ${snapshot.evaluatedAt}`,
            snapshot.alarms,
          ).join('\n'),
        );
        if (snapshot.historyError) output.info(`state-change history not read: ${snapshot.historyError}`);
        return;
      }
      const home = keelHome();
      const runtime = await requireRuntime(home);
      let snapshot: AlarmsSnapshot | undefined;
      if (options.evaluate) {
        const asked = Date.now();
        process.kill(runtime.pid, ALARM_EVALUATE_SIGNAL);
        const until = asked + EVALUATE_TIMEOUT_MS;
        do {
          await new Promise((resolve) => setTimeout(resolve, 100));
          snapshot = await readAlarmsSnapshot(home);
        } while ((!snapshot || Date.parse(snapshot.evaluatedAt) < asked) && Date.now() < until);
        if (!snapshot || Date.parse(snapshot.evaluatedAt) < asked) {
          throw new UserError(
            `the platform (pid ${runtime.pid}) did not evaluate its alarms within ${EVALUATE_TIMEOUT_MS / 1000} s; see its terminal`,
          );
        }
      } else {
        snapshot = await readAlarmsSnapshot(home);
      }
      if (!snapshot) {
        throw new UserError(
          'no alarm state yet: the platform evaluates its alarms every few seconds after it starts; run `keel alarms --evaluate`',
        );
      }
      const { alarms, evaluatedAt, stage } = snapshot;
      const notifications = await readNotifications(home, options.limit);
      output.result({ ...snapshot, notifications }, () => {
        const lines = alarmLines(`alarms of ${stage}, evaluated ${evaluatedAt}`, alarms);
        lines.push(notifications.length > 0 ? 'recent notifications:' : 'no notifications yet');
        for (const n of notifications) {
          const webhook = n.webhook ? `  (webhook ${n.webhook.status}: ${n.webhook.detail})` : '';
          lines.push(`  ${n.at}  ${n.subject}${webhook}`);
        }
        return lines.join('\n');
      });
    });
}
