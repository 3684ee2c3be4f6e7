import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, type ITable, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import type { Grant, IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { isKnown } from '#lib/prop-checks.ts';
import { TABLES, type TableRole } from '#shared/resources.ts';

/** DynamoDB's table naming rule. */
const TABLE_NAME_PATTERN = /^[A-Za-z0-9_.-]{3,255}$/;

/** Key actions of reading and writing items: CDK's own sets for `grantReadData` / `grantWriteData`. */
const KEY_READ_ACTIONS = ['kms:Decrypt', 'kms:DescribeKey'];
const KEY_WRITE_ACTIONS = ['kms:Encrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*'];
const ITEM_READS = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan', 'ConditionCheckItem']);
const ITEM_WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem']);

/**
 * A `Table` whose `grant(grantee, ...actions)`, the least-privilege grant every Keel stack uses, also
 * grants the customer managed key what those actions need. CDK's `grant` leaves the key to the caller,
 * so each consumer would have to know that the table is encrypted with its own key.
 */
class KeyGrantingTable extends Table {
  override grant(grantee: IGrantable, ...actions: string[]): Grant {
    const grant = super.grant(grantee, ...actions);
    const names = actions.map((action) => action.replace(/^dynamodb:/, ''));
    const writes = names.some((name) => ITEM_WRITES.has(name));
    const reads = writes || names.some((name) => ITEM_READS.has(name));
    if (this.encryptionKey && reads) {
      this.encryptionKey.grant(grantee, ...KEY_READ_ACTIONS, ...(writes ? KEY_WRITE_ACTIONS : []));
    }
    return grant;
  }
}

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
   * Customer managed KMS key for encryption at rest. The table's `grant` then also grants the key:
   * `kms:Decrypt` and `kms:DescribeKey` for item reads, and `kms:Encrypt`, `kms:ReEncrypt*` and
   * `kms:GenerateDataKey*` besides for item writes.
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
    this.validateProps(props);
    const keys: { readonly partitionKey: string; readonly sortKey?: string } = TABLES[props.role];

    this.table = new KeyGrantingTable(this, 'Table', {
      tableName: props.tableName,
      partitionKey: { name: keys.partitionKey, type: AttributeType.STRING },
      sortKey: keys.sortKey === undefined ? undefined : { name: keys.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: {
        pointInTimeRecoveryEnabled: true,
        recoveryPeriodInDays: props.pointInTimeRecoveryDays,
      },
      encryption: props.encryptionKey ? TableEncryption.CUSTOMER_MANAGED : TableEncryption.AWS_MANAGED,
      encryptionKey: props.encryptionKey,
      deletionProtection: props.deletionProtection ?? true,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
  }

  /** Refuses props DynamoDB would refuse; values known only at deploy time pass. */
  private validateProps(props: KeelTableProps): void {
    const owner = `KeelTable ${this.node.path}`;
    if (isKnown(props.tableName) && !TABLE_NAME_PATTERN.test(props.tableName)) {
      throw new Error(
        `${owner}: tableName "${props.tableName}" is invalid: use 3-255 letters, digits, "_", "-" or "."`,
      );
    }
    const recoveryDays = props.pointInTimeRecoveryDays;
    if (isKnown(recoveryDays) && (!Number.isInteger(recoveryDays) || recoveryDays < 1 || recoveryDays > 35)) {
      throw new Error(
        `${owner}: pointInTimeRecoveryDays must be a whole number from 1 to 35 (got ${recoveryDays})`,
      );
    }
  }
}
