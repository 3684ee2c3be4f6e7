import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { expect } from 'vitest';
import type { AlarmsSnapshot } from '#local/alarms.ts';
import type { Notification } from '#local/notifications.ts';
import { readRuntime, runtimeTarget } from '#local/running-platform.ts';
import { createS3Client } from '#shared/aws/clients.ts';
import type { DriftReportDocument } from '#shared/drift/job.ts';
import { keelUpEnv, type RunningKeel, runKeel, startKeelUp } from './cli.ts';

/**
 * A `keel up` of its own in a fresh KEEL_HOME (every prediction captured, alarms evaluated every 2 s,
 * schedules off), with the steps of the monitoring walkthrough: drifted data → ETL → traffic → drift
 * check → alarms. `env` adds variables (e.g. KEEL_ONCALL_WEBHOOK).
 */
export async function startMonitoredPlatform(name: string, extraEnv: Record<string, string> = {}) {
  const home = await mkdtemp(join(tmpdir(), `keel-${name}-`));
  const env = keelUpEnv(home, {
    KEEL_CAPTURE_SAMPLE_RATE: '1',
    KEEL_ALARM_INTERVAL_SECONDS: '2',
    ...extraEnv,
  });
  const keel: RunningKeel = await startKeelUp(env);
  const runtime = (await readRuntime(home))!;
  const keelJson = async <T>(args: string[]): Promise<T> => {
    const result = await runKeel(['--json', ...args], env);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as T;
  };
  return {
    home,
    env,
    keel,
    keelJson,
    /** Generates customers c-000001… (with an optional drift), loads them, scores each through the API. */
    async serve(rows: number, seed: number, drift?: string) {
      const generated = await keelJson<{ key: string }>([
        'data',
        'generate',
        '--rows',
        String(rows),
        '--seed',
        String(seed),
        ...(drift ? ['--drift', drift] : []),
      ]);
      await keelJson(['etl', 'run', '--input', generated.key]);
      const ids = Array.from({ length: rows }, (_, i) => `c-${String(i + 1).padStart(6, '0')}`);
      for (let i = 0; i < ids.length; i += 100) {
        const response = await fetch(`${runtime.endpoints.api}/predict/batch`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ items: ids.slice(i, i + 100).map((customerId) => ({ customerId })) }),
        });
        expect(response.status).toBe(200);
      }
    },
    /**
     * `keel drift check --from FROM [...args]` until the window holds `rows` captures (keel up writes
     * the API's captures within 1 s); the report document the job wrote to S3.
     */
    async driftCheck(from: Date, rows: number, args: string[] = []) {
      const until = Date.now() + 30_000;
      for (;;) {
        const result = await keelJson<{ rows: number; reportKey: string }>([
          'drift',
          'check',
          '--from',
          from.toISOString(),
          ...args,
        ]);
        if (result.rows >= rows || Date.now() > until) {
          expect(result.rows).toBe(rows);
          const s3 = createS3Client(runtimeTarget(runtime));
          const object = await s3.send(
            new GetObjectCommand({ Bucket: runtime.names.outputs!, Key: result.reportKey }),
          );
          s3.destroy();
          return JSON.parse(await object.Body!.transformToString()) as DriftReportDocument;
        }
        await new Promise((resolve) => setTimeout(resolve, 1_500));
      }
    },
    alarms: () =>
      keelJson<AlarmsSnapshot & { notifications: Notification[] }>(['alarms', '--evaluate', '--limit', '50']),
    async close() {
      expect(await keel.stop()).toBe(0);
      await rm(home, { recursive: true, force: true });
    },
  };
}
