import { RemovalPolicy, Token } from 'aws-cdk-lib';
import { AttributeType, BillingMode, type ITable, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { TABLES, type TableRole } from '#shared/resources.ts';

/** DynamoDB's table naming rule. */
const TABLE_NAME_PATTERN = /^[A-Za-z0-9_.-]{3,255}$/;

/** Props of {@link KeelTable}. */
export interface KeelTableProps {
  /** Which Keel table this is; its key schema comes from `TABLES` in `shared/resources.ts`. */
  readonly role: TableRole;
  /** Physical table name; take it from `tableName()` in `shared/resources.ts`. */
  readonly tableName: string;
  /**
   * Refuse `DeleteTable` (in CloudFormation and in the console) until protection is turned off.
   *
   * @default - true
   */
  readonly deletionProtection?: boolean;
  /**
   * Customer managed KMS key for encryption at rest.
   *
   * @default - the AWS managed key `aws/dynamodb`
   */
  readonly encryptionKey?: IKey;
  /**
   * Point-in-time recovery window: how far back the table can be restored, 1 to 35 days.
   *
   * @default - 35 days (DynamoDB's default)
   */
  readonly pointInTimeRecoveryDays?: number;
  /**
   * What happens to the table when it leaves the stack. DESTROY still fails while
   * {@link deletionProtection} is on.
   *
   * @default - RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * A Keel DynamoDB table: on-demand, point-in-time recovery, KMS encryption, deletion protection,
 * retained by default; string keys as declared in `TABLES`.
 *
 * `Table` rather than `TableV2`: cdk-nag's DynamoDB rules (AwsSolutions-DDB3, point-in-time recovery)
 * only inspect `AWS::DynamoDB::Table`, so a `TableV2` (`AWS::DynamoDB::GlobalTable`) would pass the nag
 * gate unchecked, and Keel is single-region, so global-table replicas buy nothing.
 */
export class KeelTable extends Construct {
  public readonly table: ITable;

  constructor(scope: Construct, id: string, props: KeelTableProps) {
    super(scope, id);
    if (!Token.isUnresolved(props.tableName) && !TABLE_NAME_PATTERN.test(props.tableName)) {
      throw new Error(
        `KeelTable ${this.node.path}: tableName "${props.tableName}" is invalid: use 3-255 letters, digits, "_", "-" or "."`,
      );
    }
    const recoveryDays = props.pointInTimeRecoveryDays;
    if (
      recoveryDays !== undefined &&
      (!Number.isInteger(recoveryDays) || recoveryDays < 1 || recoveryDays > 35)
    ) {
      throw new Error(
        `KeelTable ${this.node.path}: pointInTimeRecoveryDays must be a whole number from 1 to 35 (got ${recoveryDays})`,
      );
    }
    const keys: { readonly partitionKey: string; readonly sortKey?: string } = TABLES[props.role];

    this.table = new Table(this, 'Table', {
      tableName: props.tableName,
      partitionKey: { name: keys.partitionKey, type: AttributeType.STRING },
      sortKey: keys.sortKey === undefined ? undefined : { name: keys.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: {
        pointInTimeRecoveryEnabled: true,
        recoveryPeriodInDays: recoveryDays,
      },
      encryption: props.encryptionKey ? TableEncryption.CUSTOMER_MANAGED : TableEncryption.AWS_MANAGED,
      encryptionKey: props.encryptionKey,
      deletionProtection: props.deletionProtection ?? true,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
  }
}
