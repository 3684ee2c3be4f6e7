import { CfnWebACL, CfnWebACLAssociation } from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { isKnown } from '#lib/prop-checks.ts';

/** Props of {@link ApiWebAcl}. */
export interface ApiWebAclProps {
  /** Name of the web ACL and prefix of its CloudWatch metrics, e.g. `keel-dev-inference`. */
  readonly name: string;
  /** ARN of the API Gateway stage to protect (`Stage.stageArn`). */
  readonly stageArn: string;
  /**
   * Requests one client IP may make in any 5-minute window before the rest are blocked (403).
   * WAF accepts 10 to 2,000,000,000.
   *
   * @default - 3000 (10 per second sustained)
   */
  readonly rateLimitPer5Minutes?: number;
}

const RATE_LIMIT = { min: 10, max: 2_000_000_000 };

/**
 * A regional WAFv2 web ACL in front of an API Gateway stage: a per-IP rate limit, then AWS's core rule
 * set and its known-bad-inputs rule set (Log4j and similar exploit payloads). Everything else is allowed.
 */
export class ApiWebAcl extends Construct {
  public readonly webAcl: CfnWebACL;

  constructor(scope: Construct, id: string, props: ApiWebAclProps) {
    super(scope, id);
    this.validateProps(props);
    const rateLimit = props.rateLimitPer5Minutes ?? 3000;
    const visibility = (metric: string): CfnWebACL.VisibilityConfigProperty => ({
      metricName: `${props.name}-${metric}`,
      cloudWatchMetricsEnabled: true,
      sampledRequestsEnabled: true,
    });
    const managed = (priority: number, name: string, overrides?: CfnWebACL.RuleActionOverrideProperty[]) => ({
      name,
      priority,
      overrideAction: { none: {} },
      statement: {
        managedRuleGroupStatement: { vendorName: 'AWS', name, ruleActionOverrides: overrides },
      },
      visibilityConfig: visibility(name),
    });

    this.webAcl = new CfnWebACL(this, 'WebAcl', {
      name: props.name,
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      visibilityConfig: visibility('all'),
      rules: [
        // First, so a flood is dropped before the managed groups spend capacity on it.
        {
          name: 'RateLimitPerIp',
          priority: 0,
          action: { block: {} },
          statement: {
            rateBasedStatement: { limit: rateLimit, aggregateKeyType: 'IP', evaluationWindowSec: 300 },
          },
          visibilityConfig: visibility('RateLimitPerIp'),
        },
        // The core set blocks bodies over 8 KB; a batch of up to 100 items is bigger, and API Gateway and
        // the handler already cap payloads (413), so that one rule only counts.
        managed(1, 'AWSManagedRulesCommonRuleSet', [
          { name: 'SizeRestrictions_BODY', actionToUse: { count: {} } },
        ]),
        managed(2, 'AWSManagedRulesKnownBadInputsRuleSet'),
      ],
    });
    new CfnWebACLAssociation(this, 'Association', {
      resourceArn: props.stageArn,
      webAclArn: this.webAcl.attrArn,
    });
  }

  /** Refuses a rate limit WAF would refuse; a value known only at deploy time passes. */
  private validateProps(props: ApiWebAclProps): void {
    const rateLimit = props.rateLimitPer5Minutes;
    if (
      isKnown(rateLimit) &&
      (!Number.isInteger(rateLimit) || rateLimit < RATE_LIMIT.min || rateLimit > RATE_LIMIT.max)
    ) {
      throw new Error(
        `ApiWebAcl ${this.node.path}: rateLimitPer5Minutes must be a whole number from ${RATE_LIMIT.min} to ${RATE_LIMIT.max} (got ${rateLimit})`,
      );
    }
  }
}
