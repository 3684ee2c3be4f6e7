import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { type Output, UserError } from '#cli/output.ts';
import { REPO_ROOT } from '#lib/paths.ts';
import {
  ALARM_EVALUATE_SIGNAL,
  alarmIntervalMs,
  createAlarmLoop,
  localAlarmCatalog,
  ONCALL_WEBHOOK_ENV,
} from '#local/alarms.ts';
import { alarmStateChangeEvent } from '#local/alarms-message.ts';
import type { ApiCompute } from '#local/api.ts';
import { fileNotifier, type Notification } from '#local/notifications.ts';
import {
  keelHome,
  LOCAL_PROCESS_ENV,
  type RuntimeInfo,
  readRuntime,
  removeRuntime,
  writeRuntime,
} from '#local/running-platform.ts';
import { startScheduler } from '#local/scheduler.ts';
import {
  configuredSchedules,
  KeelConfigError,
  loadKeelConfig,
  localConfigFile,
  stageVariables,
} from '#shared/config/keel-config.ts';
import { intEnv, optionalEnv } from '#shared/env.ts';
import { monitoringOptionsFromEnv } from '#shared/monitoring/alarm-options.ts';
import { LOCAL_ENVIRONMENT } from '#shared/resources.ts';

async function apiCompute(): Promise<ApiCompute> {
  const { API_COMPUTES, isApiCompute } = await import('#local/api.ts');
  const value = optionalEnv(LOCAL_PROCESS_ENV.apiCompute, 'lambda');
  if (!isApiCompute(value)) {
    throw new UserError(
      `${LOCAL_PROCESS_ENV.apiCompute} must be ${API_COMPUTES.join(' or ')} (got "${value}")`,
    );
  }
  return value;
}

/** `keel up`: the embedded local platform, in the foreground until Ctrl-C. */
export function registerUp(program: Command, output: Output): void {
  program
    .command('up')
    .description('start the local platform (S3 and DynamoDB servers) and keep it running until Ctrl-C')
    .action(async () => {
      const home = keelHome();
      // The local stage's config (config/local.json): its schedules are the ones fired below.
      const config = (() => {
        try {
          return loadKeelConfig({ root: REPO_ROOT, stage: LOCAL_ENVIRONMENT.stage, file: localConfigFile() });
        } catch (error) {
          if (error instanceof KeelConfigError)
            throw new UserError(`${error.message} (docs/configuration.md)`);
          throw error;
        }
      })();
      // The handlers run here read the stage's settings from this process's environment, as they read
      // their function's in AWS (model name, alarm options, ETL bad-row share); a variable set by the
      // user still wins.
      for (const [name, value] of Object.entries(stageVariables(config))) process.env[name] ??= value;
      const running = await readRuntime(home);
      if (running) {
        throw new UserError(
          `Keel is already running in ${home} (pid ${running.pid}); stop it first with Ctrl-C`,
        );
      }
      const compute = await apiCompute();
      const apiWorkers = intEnv(LOCAL_PROCESS_ENV.apiWorkers, availableParallelism(), { min: 1, max: 64 });
      // This process supervises: storage and the API's containers run in processes of their own, the
      // functions of the API and the pipelines in Lambda-like environments; none of them outlives it.
      let runtime: RuntimeInfo | undefined;
      const [
        { startPlatformApi },
        { bootstrapIfEmpty },
        { createPipelineRunner },
        { platformContext },
        { startRolloutDecisions },
        { startStorageProcess },
      ] = await Promise.all([
        import('#local/api.ts'),
        import('#local/bootstrap.ts'),
        import('#local/pipelines.ts'),
        import('#local/platform-context.ts'),
        import('#local/rollout-decisions.ts'),
        import('#local/storage-process.ts'),
      ]);
      const servers = await startStorageProcess({
        home,
        s3Port: intEnv(LOCAL_PROCESS_ENV.s3Port, 4568, { min: 0, max: 65535 }),
        dynamoPort: intEnv(LOCAL_PROCESS_ENV.dynamodbPort, 4567, { min: 0, max: 65535 }),
        environment: LOCAL_ENVIRONMENT,
        // A refused call here is a deploy that would fail the same way in AWS: say so where it is seen.
        onDenied: (denial) => output.info(`AccessDenied (${denial.service}): ${denial.message}`),
        log: (message) => output.info(message),
        onRestarted: (storage) => {
          if (!runtime?.processes) return;
          runtime = { ...runtime, processes: { ...runtime.processes, storage } };
          writeRuntime(home, runtime).catch((error: Error) =>
            output.info(`runtime.json not updated with the new storage pid: ${error.message}`),
          );
        },
      });
      const base = {
        pid: process.pid,
        startedAt: new Date().toISOString(),
        stage: LOCAL_ENVIRONMENT.stage,
        region: servers.target.region,
        endpoints: servers.target.endpoints!,
        names: servers.names,
      };
      const ctx = platformContext(base);
      const onNotification = (n: Notification) => output.info(`notification: ${n.subject}`);
      const runner = await createPipelineRunner({
        home,
        target: servers.target,
        names: servers.names,
        onNotification,
      });
      try {
        await bootstrapIfEmpty(ctx, runner, {
          rows: intEnv('KEEL_BOOTSTRAP_ROWS', 20_000, { min: 1_000, max: 10_000_000 }),
          seed: 42,
          log: (message) => output.info(message),
        });
      } catch (error) {
        ctx.close();
        await runner.close();
        await servers.close();
        throw error;
      }
      const api = await startPlatformApi({
        home,
        target: servers.target,
        names: servers.names,
        port: intEnv(LOCAL_PROCESS_ENV.port, 3000, { min: 0, max: 65535 }),
        compute,
        workers: apiWorkers,
        log: (message) => output.info(message),
      }).catch(async (error: unknown) => {
        ctx.close();
        await runner.close();
        await servers.close();
        throw error;
      });
      const scheduler =
        optionalEnv('KEEL_SCHEDULES', 'on') === 'off'
          ? undefined
          : startScheduler(configuredSchedules(config), runner, (m) => output.info(m));
      const webhook = optionalEnv(ONCALL_WEBHOOK_ENV, '');
      const alarms = await createAlarmLoop({
        home,
        environment: LOCAL_ENVIRONMENT,
        catalog: localAlarmCatalog(monitoringOptionsFromEnv(), LOCAL_ENVIRONMENT.stage),
        notify: fileNotifier(home, onNotification),
        ...(webhook ? { webhook: { url: webhook } } : {}),
        // As the EventBridge rule on the guardrail alarms: the rollout guard's function ends the rollout.
        onGuardrailAlarm: async (_definition, transition) => {
          const outcome = await runner.guard(alarmStateChangeEvent(transition, LOCAL_ENVIRONMENT));
          output.info(`rollout guard (${transition.name}): ${outcome.summary}`);
        },
        log: (m) => output.info(m),
      });
      alarms.start(alarmIntervalMs());
      // The rollout state machine's executions, one per rollout (`keel models rollout` asks for them).
      const decisions = startRolloutDecisions({ home, runner, log: (m) => output.info(m) });
      // `keel alarms --evaluate` in another terminal asks for an evaluation now.
      const evaluateNow = () => void alarms.evaluate().catch((e: Error) => output.info(e.message));
      process.on(ALARM_EVALUATE_SIGNAL, evaluateNow);
      const endpoints = { ...servers.target.endpoints!, api: api.url };
      runtime = { ...base, endpoints, processes: { storage: servers.pid() ?? 0, api: api.pids() } };
      await writeRuntime(home, runtime);

      output.result(
        { status: 'running', home, endpoints, names: servers.names, created: servers.created },
        () =>
          [
            `Keel is running (state in ${home})`,
            `  API       ${endpoints.api}  (POST /predict, POST /predict/batch, GET /health)`,
            compute === 'ecs'
              ? `            the predict container in ${apiWorkers} processes (${LOCAL_PROCESS_ENV.apiCompute}=ecs)`
              : `            the predict function in Lambda-like environments (${LOCAL_PROCESS_ENV.apiCompute}=lambda)`,
            `  S3        ${endpoints.s3}`,
            `  DynamoDB  ${endpoints.dynamodb}`,
            `            storage process ${servers.pid()}, restarted if it dies`,
            ...Object.entries(servers.names).map(([role, name]) => `  ${role.padEnd(15)} ${name}`),
            servers.created.length > 0
              ? `  created: ${servers.created.join(', ')}`
              : '  resources: already present',
            ...(scheduler
              ? scheduler
                  .upcoming()
                  .map((s) => `  schedule ${s.id.padEnd(13)} next ${s.target} at ${s.at.toISOString()}`)
              : ['  schedules off (KEEL_SCHEDULES=off)']),
            `  alarms evaluated every ${alarmIntervalMs() / 1000} s${webhook ? `, notified to ${webhook}` : ''} (keel alarms)`,
            'In another terminal: npx keel predict c-000042   (or: npx keel models list)',
            'Ctrl-C stops and keeps the state.',
          ].join('\n'),
      );

      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals) => {
          output.info(`\n${signal}: stopping…`);
          resolve();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      scheduler?.stop();
      process.off(ALARM_EVALUATE_SIGNAL, evaluateNow);
      await alarms.stop();
      await decisions.stop();
      await api.close();
      await runner.close();
      ctx.close();
      await servers.close();
      await removeRuntime(home);
      output.info(`stopped; state kept in ${home}`);
    });
}
