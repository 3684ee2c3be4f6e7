import type { StackProps } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { DEFAULT_MODEL_NAME } from '#shared/registry/metadata.ts';
import type { BucketRole, TableRole } from '#shared/resources.ts';

/** Props every Keel stack takes. */
export interface KeelStackProps extends StackProps {
  /** Deployment stage (`dev`, `prod`, …): lower-case letters, digits and dashes, starting with a letter. */
  readonly stage: string;
}

/** The data stack's buckets and tables, for a stack whose functions use them. */
export interface DataResources {
  /** The data stack's buckets (`DataStack.buckets`), by role. */
  readonly buckets: Readonly<Record<BucketRole, IBucket>>;
  /** The data stack's tables (`DataStack.tables`), by role. */
  readonly tables: Readonly<Record<TableRole, ITable>>;
}

/** The registry model a stack serves, retrains, scores or watches. */
export interface ModelProps {
  /**
   * Registry name of the model.
   *
   * @default - 'churn'
   */
  readonly modelName?: string;
}

/** The model of `props`, or the default one. */
export const modelNameOf = (props: ModelProps): string => props.modelName ?? DEFAULT_MODEL_NAME;
