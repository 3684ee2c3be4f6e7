import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { addKeelStacks } from '#lib/keel-app.ts';
import { REPO_ROOT } from '#lib/paths.ts';
import { parseKeelConfig } from '#shared/config/keel-config.ts';
import { RESOURCE_ALARM_PREFIX } from '#shared/monitoring/alarm-definitions.ts';
import { CDK_CONTEXT, NO_BUNDLING } from '../support/cdk.ts';
import { extractDocCommands } from '../support/doc-commands.ts';

/**
 * docs/runbook.md reads every value its AWS CLI commands need from the stage's stack outputs: each
 * variable is set from an output that the stacks have, and each output it names exists. The stacks are
 * prod's with retrain.onDrift, so every optional part that has an output is there.
 */
const RUNBOOK = 'docs/runbook.md';
const markdown = readFileSync(join(REPO_ROOT, RUNBOOK), 'utf8');
const { commands, skipped } = extractDocCommands(RUNBOOK, markdown);
const texts = [...commands.map((c) => c.text), ...skipped.flatMap((b) => b.commands)];

const prod = JSON.parse(readFileSync(join(REPO_ROOT, 'config/prod.json'), 'utf8'));
const app = new App({ context: { ...CDK_CONTEXT, ...NO_BUNDLING } });
const stacks = addKeelStacks(app, {
  stage: 'test',
  env: { account: '123456789012', region: 'eu-west-1' },
  config: parseKeelConfig({ ...prod, retrain: { ...prod.retrain, onDrift: true } }, 'prod + retrain.onDrift'),
});
/** Output keys by the part of the stack name after the stage: `Monitoring` → [`OnCallTopicArn`, …]. */
const outputs = new Map(
  Object.values(stacks).map((stack) => [
    stack.stackName.split('-').at(-1)!,
    Object.keys(Template.fromStack(stack).toJSON().Outputs ?? {}),
  ]),
);
const allOutputs = [...outputs.values()].flat();
/** The deploy-time parameters (`OnCallWebhookUrl`), which the runbook names too. */
const parameters = Object.values(stacks).flatMap((stack) =>
  Object.keys(Template.fromStack(stack).toJSON().Parameters ?? {}),
);

/** `NAME=$(aws cloudformation describe-stacks --stack-name "Keel-$STAGE-Part" … OutputKey=='Key' …)`. */
const FROM_OUTPUT =
  /^([A-Z][A-Z0-9_]*)=\$\(aws cloudformation describe-stacks --stack-name "Keel-\$STAGE-(\w+)"[\s\\]+--query "Stacks\[0\]\.Outputs\[\?OutputKey=='(\w+)'\]\.OutputValue" --output text\)$/;
const LITERAL = /^([A-Z][A-Z0-9_]*)=[\w.-]+$/;

describe('docs/runbook.md', () => {
  it('sets every variable its commands use, from a literal or from an output the stacks have', () => {
    const assigned = new Map<string, string>();
    for (const text of texts) {
      const fromOutput = FROM_OUTPUT.exec(text);
      if (fromOutput) {
        const [, name, part, key] = fromOutput as unknown as [string, string, string, string];
        expect(outputs.get(part), `${text}: no stack Keel-<stage>-${part}`).toBeDefined();
        expect(outputs.get(part), `${text}: Keel-<stage>-${part} has no output ${key}`).toContain(key);
        assigned.set(name, key);
        continue;
      }
      const literal = LITERAL.exec(text);
      if (literal) assigned.set(literal[1]!, text);
    }
    const used = new Set(
      texts.flatMap((text) => [...text.matchAll(/\$\{?([A-Z][A-Z0-9_]*)\}?/g)].map((m) => m[1]!)),
    );
    // Prose quotes commands too (`aws sqs delete-message --queue-url "$DLQ_URL" …`).
    for (const [, name] of markdown.matchAll(/`[^`\n]*\$\{?([A-Z][A-Z0-9_]*)\}?[^`\n]*`/g)) used.add(name!);
    expect([...used].filter((name) => !assigned.has(name))).toEqual([]);
    // The runbook reads queues and topics this way: a test of nothing would pass too.
    expect([...assigned.values()]).toEqual(
      expect.arrayContaining(['OnCallDeadLetterQueueUrl', 'OnCallTopicArn', 'NotificationsTopicArn']),
    );
  });

  it('names only outputs (and parameters) the stacks have', () => {
    const named = [...markdown.matchAll(/`([A-Z][A-Za-z]*(?:Arn|Url|Name))`/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(10);
    expect(named.filter((key) => !allOutputs.includes(key) && !parameters.includes(key))).toEqual([]);
  });

  it('lists every dead-letter queue’s alarm with the stack and outputs of its URL and ARN', () => {
    const rows = [
      ...markdown.matchAll(
        /^\| `(dlq-depth-[a-z-]+)`[^|]*\|[^|]*\| `Keel-<stage>-(\w+)` \| `(\w+)`, `(\w+)` \|$/gm,
      ),
    ].map(([, alarm, part, url, arn]) => ({ alarm: alarm!, part: part!, url: url!, arn: arn! }));
    const queueAlarms = stacks.monitoring.catalog.alarms
      .map((a) => a.id)
      .filter((id) => id.startsWith(RESOURCE_ALARM_PREFIX.dlqDepth));
    expect(rows.map((r) => r.alarm).sort()).toEqual(queueAlarms.sort());
    for (const { alarm, part, url, arn } of rows) {
      expect(outputs.get(part), alarm).toEqual(expect.arrayContaining([url, arn]));
      // The outputs are the queue's own: the alarm watches the queue they name.
      const template = Template.fromStack(Object.values(stacks).find((s) => s.stackName.endsWith(part))!);
      const value = template.toJSON().Outputs[url].Value as { Ref: string };
      expect(template.toJSON().Resources[value.Ref].Type, `${alarm}: ${url}`).toBe('AWS::SQS::Queue');
    }
  });
});
