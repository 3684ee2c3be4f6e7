import type { Node } from 'constructs';
import { REPO_ROOT } from '#lib/paths.ts';
import { type KeelConfig, loadKeelConfig } from '#shared/config/keel-config.ts';

/**
 * Reading the app's context (`cdk synth -c key=value`): `-c stage=<name>` (default `dev`) selects
 * `config/<stage>.json`, `-c config=FILE` names another file. Everything else a stage sets lives in
 * that file (docs/configuration.md).
 */

/** Context keys of earlier versions, now keys of the stage configuration. */
const RETIRED_KEYS: Readonly<Record<string, string>> = {
  inference: 'inference.compute',
  modelBackend: 'inference.model',
  sagemakerEndpoint: 'inference.sagemakerEndpoint',
  onCallEmail: 'onCall.email',
  onCallWebhookUrl: 'onCall.webhookUrl',
  retrainOnDrift: 'retrain.onDrift',
};

/** A string value, or `fallback` when the key is absent. */
function contextString(node: Node, key: string, fallback: string): string;
function contextString(node: Node, key: string): string | undefined;
function contextString(node: Node, key: string, fallback?: string): string | undefined {
  const value: unknown = node.tryGetContext(key);
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value === '') {
    throw new Error(
      `context "${key}" must be a non-empty string, e.g. -c ${key}=… (got ${JSON.stringify(value) ?? String(value)})`,
    );
  }
  return value;
}

/** The stage named by the context and its validated configuration; throws naming the bad key. */
export function stageConfigFromContext(
  node: Node,
  root: string = REPO_ROOT,
): { readonly stage: string; readonly config: KeelConfig } {
  for (const [key, replacement] of Object.entries(RETIRED_KEYS)) {
    if (node.tryGetContext(key) !== undefined) {
      throw new Error(
        `context "${key}" is now the stage configuration's ${replacement}: set it in config/<stage>.json (or the file of -c config=FILE) and drop -c ${key}; see docs/configuration.md`,
      );
    }
  }
  const stage = contextString(node, 'stage', 'dev');
  return { stage, config: loadKeelConfig({ root, stage, file: contextString(node, 'config') }) };
}
