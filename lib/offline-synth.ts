import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, type Environment } from 'aws-cdk-lib';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { addKeelStacks } from '#lib/keel-app.ts';
import { REPO_ROOT } from '#lib/paths.ts';
import type { KeelConfig } from '#shared/config/keel-config.ts';

/** The context `cdk synth` gets from cdk.json: the feature flags the constructs rely on. */
export const CDK_JSON_CONTEXT: Record<string, unknown> = JSON.parse(
  readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8'),
).context;

/** The account and region `cdk synth` uses without credentials (bin/app.ts). */
export const OFFLINE_ENV = { account: '123456789012', region: 'us-east-1' } as const;

/**
 * A stage's four stacks synthesized in this process, without credentials and without bundling the
 * functions' code: the templates `cdk synth -c stage=<stage>` writes, for reading what they hold.
 */
export function synthesizeStage(options: {
  readonly stage: string;
  readonly config: KeelConfig;
  readonly env?: Environment;
}): CloudAssembly {
  const app = new App({ context: { ...CDK_JSON_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
  addKeelStacks(app, { stage: options.stage, env: options.env ?? OFFLINE_ENV, config: options.config });
  return app.synth();
}
