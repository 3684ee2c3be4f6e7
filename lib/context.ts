import type { Node } from 'constructs';
import type { ModelBackend } from '#lib/predict-settings.ts';

/**
 * Reading the app's context (`cdk synth -c key=value`, cdk.json): each value checked, and a bad one
 * refused with the key, what was given and what is allowed.
 */

function describe(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

/** A string value, or `fallback` when the key is absent. */
export function contextString(node: Node, key: string, fallback: string): string;
export function contextString(node: Node, key: string): string | undefined;
export function contextString(node: Node, key: string, fallback?: string): string | undefined {
  const value: unknown = node.tryGetContext(key);
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value === '') {
    throw new Error(`context "${key}" must be a non-empty string, e.g. -c ${key}=… (got ${describe(value)})`);
  }
  return value;
}

/** One of `allowed`, or `fallback` when the key is absent. */
export function contextChoice<T extends string>(
  node: Node,
  key: string,
  allowed: readonly T[],
  fallback: T,
): T {
  const value: unknown = node.tryGetContext(key);
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) {
    throw new Error(
      `context "${key}" must be one of ${allowed.map((a) => `"${a}"`).join(', ')}, e.g. -c ${key}=${allowed[0]} (got ${describe(value)})`,
    );
  }
  return value as T;
}

export const INFERENCE_KINDS = ['lambda', 'ecs'] as const;
export type InferenceKind = (typeof INFERENCE_KINDS)[number];

const MODEL_BACKEND_KINDS = ['onnx', 'sagemaker'] as const;

/** `-c modelBackend=onnx|sagemaker`, with `-c sagemakerEndpoint=<name>` required by (and only by) sagemaker. */
export function modelBackendFromContext(node: Node): ModelBackend {
  const kind = contextChoice(node, 'modelBackend', MODEL_BACKEND_KINDS, 'onnx');
  const endpointName = contextString(node, 'sagemakerEndpoint');
  if (kind === 'onnx') {
    if (endpointName !== undefined) {
      throw new Error(
        'context "sagemakerEndpoint" only applies with -c modelBackend=sagemaker: add that, or drop the endpoint',
      );
    }
    return { kind };
  }
  if (endpointName === undefined) {
    throw new Error(
      'context "modelBackend" is "sagemaker": name the endpoint too, with -c sagemakerEndpoint=<name>',
    );
  }
  return { kind, endpointName };
}
