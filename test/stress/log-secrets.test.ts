import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { readRuntime, runtimeTarget } from '#local/running-platform.ts';
import { createS3Client } from '#shared/aws/clients.ts';
import { generateRecords } from '#shared/data/generate.ts';
import { CSV_HEADER, toCsvLine } from '#shared/features/index.ts';
import { type CliResult, keelUpEnv, runKeel, startKeelUp } from '../support/cli.ts';

/**
 * A full local run with logging at DEBUG (keel up's bootstrap, predictions carrying customer attributes,
 * an ETL run with a quarantined row, a batch run), then every log line, EMF metric line and
 * notification it produced is searched for the sensitive values that were sent: none may appear.
 * Data stores (the S3 and DynamoDB servers' files) hold customer data by design and are not searched.
 */
const home = await mkdtemp(join(tmpdir(), 'keel-secrets-'));
const env = keelUpEnv(home, { POWERTOOLS_LOG_LEVEL: 'DEBUG', POWERTOOLS_METRICS_DISABLED: 'false' });

afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

/** Values no log should ever carry: each is sent in a request body or a raw file, nowhere else. */
const SECRETS = {
  income: 918273.64,
  age: 93.75,
  total_spend: 5150.37,
  tenure_months: 41.125,
  days_since_last_order: 13.0625,
  plan: 'quokkaplan',
  region: 'zanzibarregion',
  quarantinedIncome: '-555444.33',
  etlIncome: 707070.71,
};

/** The files under KEEL_HOME that are logs, metrics or notifications (not the data stores). */
async function logFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!['s3', 'dynamodb', 'servers', 'data'].includes(entry.name)) found.push(...(await logFiles(path)));
    } else if (/\.(log|jsonl|txt)$/.test(entry.name)) found.push(path);
  }
  return found;
}

describe('no sensitive value in logs, metrics or notifications', () => {
  it('keeps request attributes and raw file values out of everything a full DEBUG run writes', async () => {
    const keel = await startKeelUp(env, /Keel is running/, 240_000);
    const outputs: CliResult[] = [];
    try {
      const runtime = (await readRuntime(home))!;
      const api = runtime.endpoints.api!;
      const attributes = {
        age: SECRETS.age,
        income: SECRETS.income,
        plan: SECRETS.plan,
        region: SECRETS.region,
        tenure_months: SECRETS.tenure_months,
        total_spend: SECRETS.total_spend,
        orders: 3,
        days_since_last_order: SECRETS.days_since_last_order,
      };
      const post = (path: string, body: unknown) =>
        fetch(`${api}${path}`, { method: 'POST', body: JSON.stringify(body) });
      expect((await post('/predict', { customerId: 'c-000001', attributes })).status).toBe(200);
      expect((await post('/predict', { customerId: 'new-customer-1', attributes })).status).toBe(200);
      const batch = await post('/predict/batch', {
        items: [{ customerId: 'c-000002', attributes }, { customerId: 'c-000003' }],
      });
      expect(batch.status).toBe(200);
      // Rejected requests too: bad values must not be echoed into the logs either.
      expect(
        (await post('/predict', { customerId: 'c-000001', attributes: { ...attributes, age: 150 } })).status,
      ).toBe(400);
      expect(
        (await post('/predict', { customerId: 'unknown-1', attributes: { income: SECRETS.income } })).status,
      ).toBe(422);
      const broken = await fetch(`${api}/predict`, {
        method: 'POST',
        body: `{"customerId":"c-000001","attributes":{"income":${SECRETS.income},"plan":NaN}}`,
      });
      expect(broken.status).toBe(400);

      // An ETL run over a raw file holding the values, one row of it bad (quarantined), then a batch run.
      const records = [...generateRecords({ rows: 200, seed: 5, asOf: new Date() })];
      const lines = [CSV_HEADER, ...records.map(toCsvLine)];
      lines[1] = toCsvLine({ ...records[0]!, income: SECRETS.etlIncome, plan: SECRETS.plan });
      lines[2] = lines[2]!.replace(/^(c-\d+),(\d+),[^,]+,/, `$1,$2,${SECRETS.quarantinedIncome},`);
      const s3 = createS3Client(runtimeTarget(runtime));
      await s3.send(
        new PutObjectCommand({
          Bucket: runtime.names.raw!,
          Key: 'raw/20991231T000000Z-secrets.csv',
          Body: `${lines.join('\n')}\n`,
        }),
      );
      s3.destroy();
      const etl = await runKeel(['etl', 'run', '--input', 'raw/20991231T000000Z-secrets.csv'], env, 240_000);
      outputs.push(etl);
      expect(etl.code, etl.stderr).toBe(0);
      const batchRun = await runKeel(['batch', 'run'], env, 240_000);
      outputs.push(batchRun);
      expect(batchRun.code, batchRun.stderr).toBe(0);
    } finally {
      expect(await keel.stop()).toBe(0);
    }

    const sources: { name: string; text: string }[] = [
      { name: 'keel up output', text: keel.output() },
      ...outputs.map((o, i) => ({ name: `command ${i} output`, text: `${o.stdout}\n${o.stderr}` })),
    ];
    for (const file of await logFiles(home)) {
      if ((await stat(file)).size > 0)
        sources.push({ name: relative(home, file), text: await readFile(file, 'utf8') });
    }
    // The run did log: DEBUG lines, EMF metrics and the pipelines' notifications were all searched.
    const names = sources.map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining([expect.stringMatching(/emf\.jsonl$/)]));
    expect(sources.reduce((n, s) => n + s.text.length, 0)).toBeGreaterThan(1_000);
    // The handler's own structured log lines of these requests were captured (the 4xx are logged):
    // keel up files each function's log lines under logs/, as CloudWatch Logs keeps a log group.
    const functionLogs = sources.filter((s) => s.name.startsWith('logs/'));
    expect(functionLogs.map((s) => s.text).join('\n')).toMatch(/"message":"request rejected"/);

    console.log(`searched: ${sources.map((s) => `${s.name} (${s.text.length} chars)`).join(', ')}`);
    const leaks: string[] = [];
    for (const { name, text } of sources) {
      for (const [field, value] of Object.entries(SECRETS)) {
        if (text.includes(String(value))) leaks.push(`${name}: ${field} (${value})`);
      }
    }
    expect(leaks).toEqual([]);
  }, 600_000);
});
