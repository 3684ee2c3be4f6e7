import { Duration, Token } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  logRetentionProblem,
  SAGEMAKER_ENDPOINT_NAME,
  SAGEMAKER_ENDPOINT_RULE,
} from '#shared/config/rules.ts';
import { modelNameSchema } from '#shared/registry/metadata.ts';

/**
 * Checks the constructs' `validateProps` share. A value known only at deploy time (an unresolved
 * token: a parameter, another resource's attribute) is not checked at synth: CloudFormation and the
 * service check it when they get it.
 */

/** Whether a prop is given and known at synth. */
export function isKnown<T>(value: T | undefined): value is T {
  if (value === undefined) return false;
  return value instanceof Duration ? !value.isUnresolved() : !Token.isUnresolved(value);
}

/** Logs must expire (the rule of shared/config/rules.ts, as for a stage's `retention.logDays`). */
export function checkLogRetention(owner: string, logRetention: RetentionDays | undefined): void {
  if (!isKnown(logRetention)) return;
  const problem = logRetentionProblem(logRetention);
  if (problem) {
    throw new Error(`${owner}: logRetention ${RetentionDays[logRetention] ?? logRetention} ${problem}`);
  }
}

/** A registry model name: it is part of S3 keys and IAM resources. */
export function checkModelName(owner: string, modelName: string): void {
  if (isKnown(modelName) && !modelNameSchema.safeParse(modelName).success) {
    throw new Error(
      `${owner}: modelName "${modelName}" is invalid: use lower-case letters, digits and dashes, starting with a letter (e.g. "churn")`,
    );
  }
}

/** A SageMaker endpoint name (the rule of shared/config/rules.ts, as for `inference.sagemakerEndpoint`). */
export function checkSageMakerEndpointName(owner: string, endpointName: string): void {
  if (isKnown(endpointName) && !SAGEMAKER_ENDPOINT_NAME.test(endpointName)) {
    throw new Error(
      `${owner}: SageMaker endpointName "${endpointName}" is invalid: use ${SAGEMAKER_ENDPOINT_RULE}`,
    );
  }
}

/** A share of something, from 0 to 1. */
export function checkShare(owner: string, name: string, value: number | undefined): void {
  if (isKnown(value) && !(value >= 0 && value <= 1)) {
    throw new Error(`${owner}: ${name} must be from 0 to 1, got ${value}`);
  }
}
