import { describe, expect, it } from 'vitest';
import {
  IDLE_PRICES,
  type IdleCost,
  idleCost,
  runsPerMonth,
  type StackResources,
  UnpricedResourceError,
} from '#lib/idle-cost.ts';

const stack = (resources: StackResources['resources']): StackResources[] => [
  { stackName: 'Keel-test-X', resources },
];
const charge = (cost: IdleCost, item: string) => cost.charges.find((c) => c.item.startsWith(item));

describe('the idle cost of a template', () => {
  it('refuses a resource type it neither prices nor knows to be free, naming it and where to add it', () => {
    expect(() => idleCost(stack({ Db: { Type: 'AWS::RDS::DBInstance' } }))).toThrow(UnpricedResourceError);
    expect(() => idleCost(stack({ Db: { Type: 'AWS::RDS::DBInstance' } }))).toThrow(
      'Keel-test-X/Db: no idle price for AWS::RDS::DBInstance: add it to PRICED or FREE_WHEN_IDLE in lib/idle-cost.ts',
    );
  });

  it('bills an alarm per metric it reads (each metric of a math expression), at the high-resolution price under 60 s', () => {
    const cost = idleCost(
      stack({
        Plain: { Type: 'AWS::CloudWatch::Alarm', Properties: { Period: 300 } },
        Math: {
          Type: 'AWS::CloudWatch::Alarm',
          Properties: {
            Metrics: [
              { Id: 'a', MetricStat: { Period: 60 } },
              { Id: 'b', MetricStat: { Period: 60 } },
              { Id: 'e', Expression: 'a / b' },
            ],
          },
        },
        Fast: { Type: 'AWS::CloudWatch::Alarm', Properties: { Period: 10 } },
        Composite: { Type: 'AWS::CloudWatch::CompositeAlarm' },
      }),
    );
    expect(charge(cost, 'CloudWatch alarm metrics')).toMatchObject({ count: 3, monthly: 0.3 });
    expect(charge(cost, 'CloudWatch alarm metrics, high resolution')).toMatchObject({
      count: 1,
      monthly: 0.3,
    });
    expect(charge(cost, 'CloudWatch composite alarms')).toMatchObject({ count: 1, monthly: 0.5 });
    expect(cost.total).toBe(1.1);
  });

  it('prices provisioned concurrency by the memory of the function it keeps warm, all month', () => {
    const cost = idleCost(
      stack({
        Fn: { Type: 'AWS::Lambda::Function', Properties: { MemorySize: 2048 } },
        Live: {
          Type: 'AWS::Lambda::Alias',
          Properties: {
            FunctionName: { Ref: 'Fn' },
            ProvisionedConcurrencyConfig: { ProvisionedConcurrentExecutions: 3 },
          },
        },
        Plain: { Type: 'AWS::Lambda::Alias', Properties: { FunctionName: { Ref: 'Fn' } } },
      }),
    );
    // 3 environments × 2 GB × 30 days.
    expect(cost.charges).toEqual([expect.objectContaining({ count: 3 * 2 * 2_592_000, monthly: 64.8 })]);
  });

  it('charges on-demand tables nothing and provisioned ones (and their indexes) by the capacity-hour', () => {
    const onDemand = { Type: 'AWS::DynamoDB::Table', Properties: { BillingMode: 'PAY_PER_REQUEST' } };
    expect(idleCost(stack({ T: onDemand })).total).toBe(0);
    const cost = idleCost(
      stack({
        T: {
          Type: 'AWS::DynamoDB::Table',
          Properties: {
            ProvisionedThroughput: { ReadCapacityUnits: 10, WriteCapacityUnits: 5 },
            GlobalSecondaryIndexes: [
              { ProvisionedThroughput: { ReadCapacityUnits: 5, WriteCapacityUnits: 5 } },
            ],
          },
        },
      }),
    );
    expect(charge(cost, 'DynamoDB provisioned reads')).toMatchObject({ count: 15 * 720 });
    expect(charge(cost, 'DynamoDB provisioned writes')).toMatchObject({ count: 10 * 720 });
    expect(cost.total).toBe(
      Math.round((15 * 720 * IDLE_PRICES.dynamoDbRcuHour + 10 * 720 * 0.00065) * 100) / 100,
    );
  });

  it('counts a schedule’s runs in a 30-day month, and bounds a function target’s compute by its timeout', () => {
    expect(runsPerMonth('rate(1 hour)')).toBe(720);
    expect(runsPerMonth('cron(0 2 * * ? *)')).toBe(30);
    expect(runsPerMonth('cron(0 3 ? * SUN *)')).toBeCloseTo((52 * 30) / 365, 10);
    const cost = idleCost(
      stack({
        Job: { Type: 'AWS::Lambda::Function', Properties: { MemorySize: 1024, Timeout: 300 } },
        Every: {
          Type: 'AWS::Events::Rule',
          Properties: {
            ScheduleExpression: 'rate(1 hour)',
            Targets: [{ Arn: { 'Fn::GetAtt': ['Job', 'Arn'] } }],
          },
        },
        Off: {
          Type: 'AWS::Events::Rule',
          Properties: {
            ScheduleExpression: 'rate(1 hour)',
            State: 'DISABLED',
            Targets: [{ Arn: { Ref: 'Job' } }],
          },
        },
      }),
    );
    expect(cost.total).toBe(0);
    expect(cost.schedules).toEqual([
      expect.objectContaining({ rule: 'Every', target: 'function', runsPerMonth: 720 }),
    ]);
    expect(cost.schedules[0]!.lambdaCeiling).toBeCloseTo(
      720 * (300 * IDLE_PRICES.lambdaGbSecond + 0.2e-6),
      10,
    );
  });
});
