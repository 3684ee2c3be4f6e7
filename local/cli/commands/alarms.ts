import type { Command } from 'commander';
import { ALARM_EVALUATE_SIGNAL, type AlarmsSnapshot, readAlarmsSnapshot } from '#local/alarms.ts';
import { readNotifications } from '#local/notifications.ts';
import { keelHome, requireRuntime } from '#local/runtime.ts';
import { type Output, parseInteger, UserError } from '../output.ts';

/** How long `--evaluate` waits for the running platform's evaluation. */
const EVALUATE_TIMEOUT_MS = 15_000;

/** `keel alarms`: the local alarms' states and the recent notifications, from the running `keel up`. */
export function registerAlarms(program: Command, output: Output): void {
  program
    .command('alarms')
    .description(
      'the alarms of the running platform (state, since when, threshold, last value) and recent notifications',
    )
    .option('--evaluate', 'ask the running platform to evaluate every alarm now, then show them')
    .option('--limit <n>', 'recent notifications shown', parseInteger('--limit'), 10)
    .action(async (options: { evaluate?: boolean; limit: number }) => {
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
      const notifications = await readNotifications(home, options.limit);
      output.result({ ...snapshot, notifications }, () => {
        const width = Math.max(...snapshot.alarms.map((a) => a.name.length));
        const lines = [`alarms of ${snapshot.stage}, evaluated ${snapshot.evaluatedAt}`];
        for (const alarm of snapshot.alarms) {
          const value = alarm.lastValue === null ? '–' : String(Number(alarm.lastValue.toPrecision(4)));
          lines.push(
            alarm.state === 'NOT_EVALUATED'
              ? `  ${alarm.name.padEnd(width)}  ${'–'.padEnd(17)} [${alarm.severity}] ${alarm.reason}`
              : `  ${alarm.name.padEnd(width)}  ${alarm.state.padEnd(17)} [${alarm.severity}] since ${alarm.since ?? '–'}  ${alarm.condition}  last ${value}`,
          );
        }
        lines.push(notifications.length > 0 ? 'recent notifications:' : 'no notifications yet');
        for (const n of notifications) {
          const webhook = n.webhook ? `  (webhook ${n.webhook.status}: ${n.webhook.detail})` : '';
          lines.push(`  ${n.at}  ${n.subject}${webhook}`);
        }
        return lines.join('\n');
      });
    });
}
