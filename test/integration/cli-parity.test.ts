import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { type Command, CommanderError } from 'commander';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '#cli/program.ts';
import { REPO_ROOT } from '#lib/paths.ts';
import { generateRecords } from '#shared/data/generate.ts';
import type { DriftJobResult } from '#shared/drift/job.ts';
import { encodeInto, FEATURE_COUNT, FEATURE_SET } from '#shared/features/index.ts';
import {
  captureHourPrefix,
  captureLine,
  captureObjectKey,
  captureRecord,
} from '#shared/inference/capture.ts';
import { alarmDefinitions } from '#shared/monitoring/alarm-definitions.ts';
import {
  DEFAULT_SERVICE,
  KEEL_NAMESPACE,
  ROLLOUT_METRICS,
  SERVICE_DIMENSION,
  VARIANT_DIMENSION,
} from '#shared/monitoring/metrics.ts';
import { markDatasetComplete, offlineDatasetHeader, offlineRow } from '#shared/offline/features-dataset.ts';
import { PIPELINES } from '#shared/pipelines/definitions.ts';
import type { QualityReport } from '#shared/quality/types.ts';
import { getAliases, startRollout } from '#shared/registry/registry.ts';
import { runKeel } from '../support/cli.ts';
import { registerTrainedModel, testRegistry } from '../support/model.ts';
import {
  putStageAlarms,
  STAGE,
  STAGE_REGION,
  stageClientConfig,
  stagePipelinesTemplate,
  startTestStage,
  type TestStage,
} from '../support/stage.ts';

/**
 * Parity of the command line: every `keel` command that an alarm (its description and runbook), a
 * notice (drift, quality, rollout, approvals, the registry's refusals) or docs/runbook.md tells an
 * operator to run works with `--stage NAME` against a deployed stage, played by moto_server
 * (test/support/stage.ts). Each named command is found in those texts, accepted by the CLI with
 * `--stage it` (a local-only one, such as `keel up`, fails here), and run against the stage, here or in
 * cli-stage.test.ts.
 */

/** Where each command named to an operator runs against the moto stage. */
const RUN: Record<string, 'here' | 'cli-stage.test.ts'> = {
  'models list': 'here',
  'models history': 'here',
  'models show': 'here',
  'models approvals': 'here',
  'features diff': 'here',
  'features export': 'here',
  'models rollout': 'here',
  'models rollout abort': 'here',
  'models promote': 'here',
  'models rollback': 'here',
  alarms: 'here',
  'drift check': 'here',
  'quality check': 'here',
  // Executions of the stage's state machines, the signed API, the raw bucket and the approval gate.
  train: 'cli-stage.test.ts',
  'etl run': 'cli-stage.test.ts',
  'batch run': 'cli-stage.test.ts',
  'data import': 'cli-stage.test.ts',
  predict: 'cli-stage.test.ts',
  'models canary': 'cli-stage.test.ts',
  'models approve': 'cli-stage.test.ts',
  'models reject': 'cli-stage.test.ts',
};

/** What reaches on-call or an approver besides the alarms: the notices and the refusals they act on. */
const NOTICE_SOURCES = [
  'shared/drift/notice.ts',
  'shared/quality/notice.ts',
  'shared/rollout/decision.ts',
  'shared/rollout/aws.ts',
  'shared/pipelines/approvals.ts',
  'shared/registry/registry.ts',
];

const PIPELINES_STACK = 'the synthesized pipelines stack';

interface Text {
  readonly source: string;
  readonly text: string;
}

/** Every alarm's description and runbook, with every resource a stage can have. */
function alarmTexts(): Text[] {
  const catalog = alarmDefinitions(
    {},
    {
      api: { name: 'keel-it', stage: 'v1' },
      functions: [{ id: 'predict', name: 'keel-it-predict', severity: 'page' }],
      stateMachines: Object.keys(PIPELINES).map((id) => ({ id, arn: `arn:aws:states:::${id}` })),
      queues: [{ id: 'schedules', name: 'keel-it-schedules-dlq' }],
    },
  );
  return [...catalog.alarms, catalog.page].map((a) => ({
    source: `alarm ${a.id}`,
    text: `${a.description}\n${a.runbook}`,
  }));
}

/** The string literals of a source file (a template's substitutions read as `X`), comments left out. */
async function literalsOf(file: string): Promise<Text[]> {
  const source = ts.createSourceFile(
    file,
    await readFile(join(REPO_ROOT, file), 'utf8'),
    ts.ScriptTarget.Latest,
  );
  const texts: Text[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) {
      texts.push({ source: file, text: node.text });
    } else if (ts.isTemplateExpression(node)) {
      texts.push({
        source: file,
        text: [node.head.text, ...node.templateSpans.map((s) => s.literal.text)].join('X'),
      });
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return texts;
}

/**
 * A mention of the CLI: `keel` (or `npx keel`) followed by a space, up to where inline code, a quoted
 * string, a parenthesis or a shell comment ends it.
 */
const MENTION = /(?<![\w./-])keel[ \t]+([^`"'()#;,\\\n]*)/g;

interface NamedCommand {
  readonly source: string;
  readonly mention: string;
  /** The command's path, e.g. `['models', 'rollback']`; empty when the mention names none. */
  readonly path: readonly string[];
}

/** The commands a text names, resolved against the CLI's own command tree. */
function commandsIn({ source, text }: Text, program: Command): NamedCommand[] {
  const found: NamedCommand[] = [];
  for (const match of text.matchAll(MENTION)) {
    const tokens = match[1]!.split(/\s+/).filter(Boolean);
    let i = 0;
    // Global options (--json, --stage S, …) come before the command.
    for (; tokens[i]?.startsWith('--'); i++) {
      const option = program.options.find((o) => o.long === tokens[i]);
      if (option?.required || option?.optional) i++;
    }
    if (tokens[i] === '…' || tokens[i] === '...') continue; // "npx keel …": any command
    // `approve|reject` names two commands.
    const walk = (command: Command, at: number, path: string[]): void => {
      const children = (tokens[at] ?? '')
        .split('|')
        .map((word) => command.commands.find((c) => c.name() === word))
        .filter((c): c is Command => c !== undefined);
      if (children.length === 0) {
        found.push({ source, mention: match[0].trim(), path });
        return;
      }
      for (const child of children) walk(child, at + 1, [...path, child.name()]);
    };
    walk(program, i, []);
  }
  return found;
}

/**
 * Whether the CLI runs `keel --stage it PATH`: the command's action replaced by a marker, its required
 * arguments and options given placeholders, so only the CLI's target check stands between.
 */
async function stageRefusal(path: readonly string[]): Promise<string | undefined> {
  const program = buildProgram();
  let command = program;
  for (const name of path) command = command.commands.find((c) => c.name() === name)!;
  let ran = false;
  command.action(() => {
    ran = true;
  });
  const args = command.registeredArguments.filter((a) => a.required).map(() => 'x');
  const options = command.options.filter((o) => o.mandatory).flatMap((o) => [o.long!, '1']);
  try {
    await program.parseAsync(['--stage', STAGE, ...path, ...args, ...options], { from: 'user' });
  } catch (error) {
    return error instanceof CommanderError ? `usage: ${error.message}` : (error as Error).message;
  }
  return ran ? undefined : 'the command did not run';
}

let stage: TestStage;
let named: NamedCommand[];
const ran = new Set<string>();
const CAPTURED = 700;

/** `keel --stage it ARGS` as an operator runs it; must succeed. */
async function onStage(args: string[], env: Record<string, string> = {}) {
  const result = await runKeel(['--stage', STAGE, ...args], { ...stage.env, ...env });
  expect(result.code, `keel --stage ${STAGE} ${args.join(' ')}\n${result.stderr}`).toBe(0);
  const program = buildProgram();
  const words = args.filter((a) => !a.startsWith('--json'));
  let command = program;
  const path: string[] = [];
  for (const word of words) {
    const child = command.commands.find((c) => c.name() === word);
    if (!child) break;
    path.push(word);
    command = child;
  }
  ran.add(path.join(' '));
  return result;
}

beforeAll(async () => {
  const program = buildProgram();
  const texts = [
    ...alarmTexts(),
    ...(await Promise.all(NOTICE_SOURCES.map(literalsOf))).flat(),
    // The approvals topic's request and the pipelines' notices, as the stage deploys them.
    { source: PIPELINES_STACK, text: JSON.stringify(stagePipelinesTemplate().toJSON()) },
    { source: 'docs/runbook.md', text: await readFile(join(REPO_ROOT, 'docs/runbook.md'), 'utf8') },
  ];
  named = texts.flatMap((text) => commandsIn(text, program));

  stage = await startTestStage();
  const resources = { stateMachines: Object.keys(PIPELINES).map((id) => ({ id, arn: `arn:${id}` })) };
  await putStageAlarms(stage.endpoint, alarmDefinitions({}, resources).alarms);
  // The champion's captured answers of the last minutes: customers who earn 1.9× more.
  const at = new Date(Date.now() - 60_000);
  const lines = [...generateRecords({ rows: CAPTURED, seed: 31, asOf: at, drift: { income: 1.9 } })].map(
    (customer, i) => {
      const vector = new Float32Array(FEATURE_COUNT);
      encodeInto(customer, vector, 0);
      const probability = 0.2 + (i % 60) / 100;
      return captureLine(
        captureRecord(
          {
            customerId: customer.customer_id,
            requestId: `r-${i}`,
            model: { name: 'churn', version: 'v1' },
            probability,
            prediction: probability >= 0.5 ? 1 : 0,
            vector,
          },
          at,
          'api',
        ),
      );
    },
  );
  await stage.aws.clients.s3.send(
    new PutObjectCommand({
      Bucket: stage.names.outputs,
      Key: captureObjectKey(captureHourPrefix('churn', at), at),
      Body: `${lines.join('\n')}\n`,
    }),
  );
  await registerTrainedModel(stage.aws, stage.customers.slice(0, 1000), { seed: 2, nTrees: 5 });
}, 180_000);

afterAll(async () => {
  await stage?.close();
});

describe('every command named to an operator works with --stage', { timeout: 120_000 }, () => {
  it('finds the commands of the alarms, the notices, the approvals topic and the runbook', () => {
    const from = (prefix: string) =>
      [...new Set(named.filter((c) => c.source.startsWith(prefix)).map((c) => c.path.join(' ')))].sort();
    console.info(
      ['alarm ', 'shared/', PIPELINES_STACK, 'docs/runbook.md']
        .map((prefix) => `${prefix.trim()}: ${from(prefix).join(', ')}`)
        .join('\n'),
    );
    expect(from('alarm ')).toEqual(
      expect.arrayContaining(['drift check', 'quality check', 'models rollback']),
    );
    expect(from('shared/rollout/')).toEqual(
      expect.arrayContaining(['models rollout', 'models rollout abort']),
    );
    // The approvals topic's request names the stage's own commands.
    expect(from(PIPELINES_STACK)).toEqual(
      expect.arrayContaining(['models approvals', 'models approve', 'models reject', 'models promote']),
    );
    expect(from('docs/runbook.md')).toEqual(
      expect.arrayContaining(['alarms', 'drift check', 'models history']),
    );
  });

  it('names only commands the CLI has, and every one is accepted with --stage', async () => {
    for (const command of named) {
      expect(
        command.path.length,
        `${command.source}: "${command.mention}" names no keel command`,
      ).toBeGreaterThan(0);
    }
    for (const path of new Set(named.map((c) => c.path.join(' ')))) {
      const where = [...new Set(named.filter((c) => c.path.join(' ') === path).map((c) => c.source))].join(
        ', ',
      );
      expect(await stageRefusal(path.split(' ')), `keel --stage ${STAGE} ${path}, named in ${where}`).toBe(
        undefined,
      );
      expect(RUN[path], `keel ${path} (named in ${where}) is run against the stage by no test`).toBeDefined();
    }
  });

  it('refuses a local-only command with --stage, as the texts must not name one', async () => {
    expect(await stageRefusal(['up'])).toBe('keel up works on the local platform only; drop --stage');
    expect(await stageRefusal(['data', 'generate'])).toMatch(/works on the local platform only/);
    const planted = commandsIn(
      { source: 'a runbook', text: 'restart it with `npx keel up`' },
      buildProgram(),
    );
    expect(planted.map((c) => c.path)).toEqual([['up']]);
  });
});

describe('the read-only commands against the moto stage', { timeout: 120_000 }, () => {
  it('models list, history and show read the stage registry', async () => {
    const list = await onStage(['--json', 'models', 'list']);
    expect(JSON.parse(list.stdout)).toMatchObject({
      champion: 'v1',
      versions: [{ version: 'v1' }, { version: 'v2' }],
    });
    const history = await onStage(['models', 'history']);
    expect(history.stdout).toMatch(/→ v1/);
    const show = await onStage(['--json', 'models', 'show', 'v1']);
    expect(JSON.parse(show.stdout)).toMatchObject({ version: 'v1' });
  });

  it('features diff compares this code’s definition with the stage champion’s, read-only', async () => {
    const report = JSON.parse((await onStage(['--json', 'features', 'diff'])).stdout);
    expect(report).toMatchObject({
      against: { version: 'v1', champion: true },
      diff: { identical: true, to: { fingerprint: FEATURE_SET.fingerprint } },
      versions: [
        { version: 'v1', servable: true },
        { version: 'v2', servable: true },
      ],
    });
  });

  it('features export writes the vectors of the stage’s newest dataset, read-only', async () => {
    const customers = stage.customers.slice(0, 300);
    const prefix = 'features/run_date=2026-12-06/parity/';
    await stage.aws.clients.s3.send(
      new PutObjectCommand({
        Bucket: stage.names.features,
        Key: `${prefix}part-00000.csv`,
        Body: `${[offlineDatasetHeader(true), ...customers.map((c) => offlineRow(c, true))].join('\n')}\n`,
      }),
    );
    await markDatasetComplete(stage.aws.clients.s3, stage.names.features, prefix, {});
    const out = join(stage.aws.home, 'stage-features.csv');
    const result = await onStage(['--json', 'features', 'export', '--definition', 'v1', '--out', out]);
    expect(JSON.parse(result.stdout)).toMatchObject({
      dataset: `s3://${stage.names.features}/${prefix}`,
      featureSet: { fingerprint: FEATURE_SET.fingerprint },
      rows: customers.length,
      labeled: true,
    });
    const lines = (await readFile(out, 'utf8')).trimEnd().split('\n');
    expect(lines[0]).toBe(['customer_id', 'event_time', ...FEATURE_SET.names, 'churned'].join(','));
    expect(lines.slice(1).map((line) => line.split(',')[0])).toEqual(customers.map((c) => c.customer_id));
  });

  it('models approvals lists the stage’s requests (none)', async () => {
    const approvals = await onStage(['--json', 'models', 'approvals', '--all']);
    expect(JSON.parse(approvals.stdout)).toEqual({ approvals: [] });
  });

  it('alarms reads the stage’s alarms from CloudWatch', async () => {
    const alarms = await onStage(['alarms']);
    expect(alarms.stdout).toMatch(/^alarms of stage it in us-east-1 \(CloudWatch\)/);
    expect(alarms.stdout).toContain('keel-it-data-drift-page');
  });

  it('drift check judges the champion’s captures against its baseline, writes the HTML report and nothing on the stage', async () => {
    const json = await onStage(['--json', 'drift', 'check']);
    // stdout is the one JSON document: no EMF line was printed (no metrics published).
    const summary = JSON.parse(json.stdout) as Omit<DriftJobResult, 'report'>;
    expect(summary).toMatchObject({
      model: { name: 'churn', version: 'v1' },
      rows: CAPTURED,
      status: 'page',
      insufficientData: false,
      maxPsiFeature: expect.stringMatching(/income/),
    });
    expect(summary).not.toHaveProperty('reportKey');
    expect(summary).not.toHaveProperty('notice');

    const file = join(stage.aws.home, 'drift.html');
    const text = await onStage(['drift', 'check', '--report', file]);
    expect(text.stdout).toMatch(
      /^report written to \S+\ndrift of churn v1 over \S+ → \S+: PAGE\n {2}700 predictions\n/,
    );
    expect(text.stdout).toMatch(/\n {2}page {2}income PSI \d/);
    expect(existsSync(file)).toBe(true);
    expect(await readFile(file, 'utf8')).toMatch(/^<!doctype html>[\s\S]*income/i);
    const written = await stage.aws.clients.s3.send(
      new ListObjectsV2Command({ Bucket: stage.names.outputs, Prefix: 'drift-reports/' }),
    );
    expect(written.KeyCount ?? 0).toBe(0);
  });

  it('drift check names a window with nothing captured as too few to judge', async () => {
    const result = await onStage([
      '--json',
      'drift',
      'check',
      '--from',
      '2026-01-01T00:00:00Z',
      '--to',
      '2026-01-01T01:00:00Z',
    ]);
    expect(JSON.parse(result.stdout)).toMatchObject({ rows: 0, insufficientData: true });
  });

  it('quality check reads the captures, with no outcomes yet', async () => {
    const file = join(stage.aws.home, 'quality.html');
    const result = await onStage(['--json', 'quality', 'check', '--report', file]);
    const report = JSON.parse(result.stdout) as QualityReport;
    expect(report.versions).toEqual([
      expect.objectContaining({ version: 'v1', predictions: CAPTURED, realized: null }),
    ]);
    expect(existsSync(file)).toBe(true);
  });

  it('models rollout shows a running rollout with its guardrails and requests from CloudWatch; rollout abort ends it', async () => {
    const registry = testRegistry(stage.aws);
    const { rollout } = await startRollout(registry, {
      name: 'churn',
      version: 'v2',
      mode: 'canary',
      percent: 10,
      bakeSeconds: 3600,
      reason: 'parity',
      actor: 'test',
    });
    const cloudwatch = new CloudWatchClient(stageClientConfig(stage.endpoint));
    await cloudwatch
      .send(
        new PutMetricDataCommand({
          Namespace: KEEL_NAMESPACE,
          MetricData: [
            {
              MetricName: ROLLOUT_METRICS.requests,
              Dimensions: [
                { Name: SERVICE_DIMENSION, Value: DEFAULT_SERVICE },
                { Name: VARIANT_DIMENSION, Value: 'challenger' },
              ],
              Value: 7,
              Timestamp: new Date(),
            },
          ],
        }),
      )
      .finally(() => cloudwatch.destroy());
    const status = await onStage(['--json', 'models', 'rollout']);
    const shown = JSON.parse(status.stdout);
    expect(shown.rollout).toMatchObject({ id: rollout.id, version: 'v2', champion: 'v1' });
    expect(shown.figures).toMatchObject({
      source: `CloudWatch (${STAGE_REGION})`,
      requests: { challenger: 7, champion: 0 },
    });
    expect(shown.figures.guardrails.map((g: { id: string }) => g.id)).toContain(
      'rollout-challenger-5xx-rate',
    );

    await onStage(['models', 'rollout', 'abort', '--reason', 'parity']);
    expect((await getAliases(registry, 'churn')).rollout).toBeUndefined();
  });

  it('models promote and rollback move the stage’s champion', async () => {
    const registry = testRegistry(stage.aws);
    await onStage(['models', 'promote', 'v2', '--reason', 'parity']);
    expect((await getAliases(registry, 'churn')).champion).toBe('v2');
    const rollback = await onStage(['--json', 'models', 'rollback', '--reason', 'parity']);
    expect(JSON.parse(rollback.stdout)).toMatchObject({ kind: 'rollback', from: 'v2', to: 'v1' });
    expect((await getAliases(registry, 'churn')).champion).toBe('v1');
  });

  it('ran every command the texts name, here or in cli-stage.test.ts', async () => {
    const cliStage = await readFile(join(REPO_ROOT, 'test/integration/cli-stage.test.ts'), 'utf8');
    for (const path of new Set(named.map((c) => c.path.join(' ')))) {
      if (RUN[path] === 'here') expect(ran, `keel --stage ${STAGE} ${path}`).toContain(path);
      else {
        const words = path
          .split(' ')
          .map((w) => `'${w}'`)
          .join(', ');
        expect(cliStage, `keel --stage ${path} in cli-stage.test.ts`).toContain(`STAGE, ${words}`);
      }
    }
  });
});
