/**
 * Every configuration change docs/configuration.md allows must deploy as an update. `cdk deploy --all`
 * updates a producing stack before the stacks that import from it, and CloudFormation refuses to
 * remove an export that a deployed stack still imports ("Export … cannot be deleted as it is in use").
 * So for a change A → B, each stack's exports under B must hold every export the stacks import under A.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { beforeAll, describe, expect, it } from 'vitest';
import { addKeelStacks } from '#lib/keel-app.ts';
import { REPO_ROOT } from '#lib/paths.ts';
import { parseKeelConfig } from '#shared/config/keel-config.ts';
import { CDK_CONTEXT } from './cdk-app.ts';

const ENV = { account: '123456789012', region: 'us-east-1' };
const CONFIG_DIR = join(REPO_ROOT, 'config');

/**
 * The documented configurations: the example files, the defaults, and each documented switch or
 * variant on top of the defaults. Every ordered pair is a change, so switching back is checked too.
 */
const CONFIGS: Record<string, unknown> = {
  ...Object.fromEntries(
    readdirSync(CONFIG_DIR)
      .filter((file) => file.endsWith('.json'))
      .map((file) => [file, JSON.parse(readFileSync(join(CONFIG_DIR, file), 'utf8'))]),
  ),
  defaults: {},
  'inference.compute ecs': { inference: { compute: 'ecs' } },
  'inference.model sagemaker': { inference: { model: 'sagemaker', sagemakerEndpoint: 'churn-endpoint' } },
  'inference.compute ecs, model sagemaker': {
    inference: { compute: 'ecs', model: 'sagemaker', sagemakerEndpoint: 'churn-endpoint' },
  },
  'inference.provisionedConcurrency': { inference: { provisionedConcurrency: 1 } },
  'retrain.onDrift': { retrain: { onDrift: true } },
  'retrain.requireApproval': {
    retrain: { requireApproval: true, approval: { emails: ['ml-leads@example.com'] } },
  },
  'capture off': { capture: { apiSampleRate: 0, batchSampleRate: 0 } },
  'schedules off': {
    schedules: { batchScoring: { enabled: false }, drift: { enabled: false }, retrain: { enabled: false } },
  },
  'onCall endpoints': {
    onCall: { email: 'oncall@example.com', webhookUrl: 'https://pager.example.com/hook' },
  },
  'data destroy': { data: { removalPolicy: 'destroy', deletionProtection: false } },
  'retention set': { retention: { captureDays: 30, predictionDays: 30, backupDays: 7 } },
};

/** Export names and imported export names of each stack (by stack name) of one configuration. */
interface References {
  readonly exports: Map<string, Set<string>>;
  readonly imports: Map<string, Set<string>>;
}

/** Every `Fn::ImportValue` name anywhere in a template (CDK's cross-stack imports are literal names). */
function importsOf(template: unknown): Set<string> {
  const names = new Set<string>();
  JSON.stringify(template, (key, value) => {
    if (key === 'Fn::ImportValue') names.add(typeof value === 'string' ? value : JSON.stringify(value));
    return value;
  });
  return names;
}

/** Synthesizes the app's stacks for one configuration, bundling skipped (no template here reads code). */
function referencesOf(name: string, input: unknown): References {
  const app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
  addKeelStacks(app, { stage: 'test', env: ENV, config: parseKeelConfig(input, name) });
  const exports = new Map<string, Set<string>>();
  const imports = new Map<string, Set<string>>();
  for (const stack of app.synth().stacks) {
    const outputs = Object.values(stack.template.Outputs ?? {}) as { Export?: { Name: string } }[];
    exports.set(stack.stackName, new Set(outputs.flatMap((o) => (o.Export ? [o.Export.Name] : []))));
    imports.set(stack.stackName, importsOf(stack.template));
  }
  return { exports, imports };
}

/** What blocks the update `from` → `to`: each import under `from` whose export `to` no longer has. */
function blockedExports(from: References, to: References): string[] {
  const blocked: string[] = [];
  for (const [consumer, names] of from.imports) {
    for (const name of names) {
      const producer = [...from.exports].find(([, exported]) => exported.has(name))?.[0];
      if (producer === undefined) throw new Error(`${consumer} imports ${name}, which no stack exports`);
      if (!to.exports.get(producer)?.has(name))
        blocked.push(`${producer} drops ${name} (imported by ${consumer})`);
    }
  }
  return blocked;
}

describe('a change between documented configurations', () => {
  const references = new Map<string, References>();
  beforeAll(() => {
    for (const [name, input] of Object.entries(CONFIGS)) references.set(name, referencesOf(name, input));
  });

  it('finds the imports it checks (the stacks do reference each other through exports)', () => {
    const defaults = references.get('defaults')!;
    expect([...defaults.imports.values()].reduce((n, names) => n + names.size, 0)).toBeGreaterThan(0);
  });

  const names = Object.keys(CONFIGS);
  it.each(names)('from %s to any other keeps every export the stacks import', (from) => {
    const blocked = names
      .filter((to) => to !== from)
      .flatMap((to) =>
        blockedExports(references.get(from)!, references.get(to)!).map((b) => `→ ${to}: ${b}`),
      );
    expect(blocked).toEqual([]);
  });
});
