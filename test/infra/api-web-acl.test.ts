import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { NO_BUNDLING } from '../support/cdk.ts';
import { only } from '../support/cfn-template.ts';
import { synthesizedInferenceApp } from '../support/inference-stack.ts';

/** The WAF web ACL on the API's stage (ApiWebAcl). */
describe('ApiWebAcl in the inference stack', () => {
  const { template } = synthesizedInferenceApp({}, NO_BUNDLING);

  it('puts a regional WAF web ACL (rate limit, core and known-bad-inputs rules) on the stage', () => {
    const [aclId] = only(template, 'AWS::WAFv2::WebACL');
    const [stageId] = only(template, 'AWS::ApiGateway::Stage');
    const [apiId] = only(template, 'AWS::ApiGateway::RestApi');
    template.hasResourceProperties('AWS::WAFv2::WebACL', {
      Scope: 'REGIONAL',
      DefaultAction: { Allow: {} },
      Rules: [
        Match.objectLike({
          Name: 'RateLimitPerIp',
          Priority: 0,
          Action: { Block: {} },
          Statement: {
            RateBasedStatement: { Limit: 3000, AggregateKeyType: 'IP', EvaluationWindowSec: 300 },
          },
        }),
        Match.objectLike({
          Priority: 1,
          OverrideAction: { None: {} },
          Statement: {
            ManagedRuleGroupStatement: {
              VendorName: 'AWS',
              Name: 'AWSManagedRulesCommonRuleSet',
              RuleActionOverrides: [{ Name: 'SizeRestrictions_BODY', ActionToUse: { Count: {} } }],
            },
          },
        }),
        Match.objectLike({
          Priority: 2,
          Statement: {
            ManagedRuleGroupStatement: { VendorName: 'AWS', Name: 'AWSManagedRulesKnownBadInputsRuleSet' },
          },
        }),
      ],
    });
    const [, association] = only(template, 'AWS::WAFv2::WebACLAssociation');
    expect(association.Properties.WebACLArn).toEqual({ 'Fn::GetAtt': [aclId, 'Arn'] });
    const arn = JSON.stringify(association.Properties.ResourceArn);
    expect(arn).toContain(':apigateway:');
    expect(arn).toContain(`{"Ref":"${apiId}"}`);
    expect(arn).toContain(`/stages/",{"Ref":"${stageId}"}`);
  });
});
