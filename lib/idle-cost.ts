import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { nextFireTime } from '#shared/pipelines/schedules.ts';

/**
 * What a deployed stage costs a month with no traffic at all, read from its synthesized templates: every
 * resource type the stacks create is either priced here or named as costing nothing idle, and a type
 * that is neither stops the calculation, so a new kind of resource cannot go uncounted. Prices are the
 * us-east-1 list prices of docs/capacity-and-cost.md ("Prices"); free tiers are left out.
 */

/** A month as the capacity plan counts it: 30 days. */
export const MONTH_HOURS = 30 * 24;
const MONTH_SECONDS = MONTH_HOURS * 3600;

/** us-east-1 list prices of what a stage pays for by the month or by the hour, idle or not. */
export const IDLE_PRICES = {
  kmsKeyMonth: 1,
  alarmMetricMonth: 0.1,
  highResolutionAlarmMetricMonth: 0.3,
  compositeAlarmMonth: 0.5,
  dashboardMonth: 3,
  webAclMonth: 5,
  webAclRuleMonth: 1,
  provisionedConcurrencyGbSecond: 0.0000041667,
  dynamoDbRcuHour: 0.00013,
  dynamoDbWcuHour: 0.00065,
  fargateVcpuHour: 0.04048,
  fargateGbHour: 0.004445,
  natGatewayHour: 0.045,
  loadBalancerHour: 0.0225,
  publicIpv4Hour: 0.005,
  lambdaGbSecond: 0.0000166667,
  lambdaRequest: 0.2 / 1_000_000,
} as const;

/** One resource of a synthesized template, as CloudFormation reads it. */
export interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Readonly<Record<string, unknown>>;
  readonly DeletionPolicy?: string;
}

/** A stack's name and its template's resources. */
export interface StackResources {
  readonly stackName: string;
  readonly resources: Readonly<Record<string, TemplateResource>>;
}

/** One line of the idle bill: `count` units at `unitPrice` each. */
export interface IdleCharge {
  readonly item: string;
  readonly unit: string;
  readonly count: number;
  readonly unitPrice: number;
  readonly monthly: number;
}

/** A schedule of the stage and what a month of its runs amounts to. */
export interface ScheduledRuns {
  readonly stackName: string;
  readonly rule: string;
  readonly expression: string;
  /** Runs in a 30-day month: a year's runs of the expression, pro rata. */
  readonly runsPerMonth: number;
  readonly target: 'function' | 'state machine';
  /**
   * A Lambda target's most a month can cost: every run for the function's whole timeout, plus the
   * requests. What a state machine run costs depends on the data it reads.
   */
  readonly lambdaCeiling?: number;
}

export interface IdleCost {
  readonly charges: readonly IdleCharge[];
  /** Sum of the charges, rounded to the cent. */
  readonly total: number;
  readonly schedules: readonly ScheduledRuns[];
}

export class UnpricedResourceError extends Error {
  override readonly name = 'UnpricedResourceError';
}

type Charge = Omit<IdleCharge, 'monthly'>;
interface Context {
  readonly stack: StackResources;
  readonly id: string;
  readonly resource: TemplateResource;
}
/** A priced type's charges for one resource; `[]` when this one costs nothing idle. */
type Pricer = (context: Context) => Charge[];

const props = (resource: TemplateResource): Record<string, unknown> => ({ ...resource.Properties });

/** The resource in the same template a `{"Ref": id}` or `{"Fn::GetAtt": [id, …]}` points at. */
function referenced(stack: StackResources, value: unknown): TemplateResource | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const ref = (value as { Ref?: unknown }).Ref;
  const getAtt = (value as { 'Fn::GetAtt'?: unknown })['Fn::GetAtt'];
  const id = typeof ref === 'string' ? ref : Array.isArray(getAtt) ? getAtt[0] : undefined;
  return typeof id === 'string' ? stack.resources[id] : undefined;
}

function numberAt(record: Record<string, unknown>, key: string, fallback: number): number {
  const value = record[key];
  if (value === undefined) return fallback;
  const parsed = typeof value === 'string' ? Number(value) : value;
  if (typeof parsed !== 'number' || !Number.isFinite(parsed)) {
    throw new UnpricedResourceError(`${key} is not a number known at synth (got ${JSON.stringify(value)})`);
  }
  return parsed;
}

function requireResource(context: Context, value: unknown, what: string): TemplateResource {
  const found = referenced(context.stack, value);
  if (!found) {
    throw new UnpricedResourceError(
      `${context.stack.stackName}/${context.id}: its ${what} is not a resource of the same template`,
    );
  }
  return found;
}

/** Provisioned concurrency on a function version or alias: environments × the function's memory. */
const provisionedConcurrency: Pricer = (context) => {
  const config = props(context.resource).ProvisionedConcurrencyConfig as
    | { ProvisionedConcurrentExecutions?: number }
    | undefined;
  if (!config) return [];
  const fn = requireResource(context, props(context.resource).FunctionName, 'FunctionName');
  const gb = numberAt(props(fn), 'MemorySize', 128) / 1024;
  const environments = numberAt(config, 'ProvisionedConcurrentExecutions', 0);
  return [
    {
      item: `Lambda provisioned concurrency (${environments} × ${gb} GB, all month)`,
      unit: 'GB-s',
      count: environments * gb * MONTH_SECONDS,
      unitPrice: IDLE_PRICES.provisionedConcurrencyGbSecond,
    },
  ];
};

/** A metric alarm is billed per metric it reads: one, or each metric of its math expression. */
const metricAlarm: Pricer = ({ resource }) => {
  const p = props(resource);
  const queries = (p.Metrics as { MetricStat?: { Period?: number } }[] | undefined) ?? [];
  const periods =
    queries.length > 0 ? queries.flatMap((q) => (q.MetricStat ? [q.MetricStat.Period] : [])) : [p.Period];
  const high = periods.some((period) => typeof period === 'number' && period < 60);
  return [
    {
      item: high ? 'CloudWatch alarm metrics, high resolution' : 'CloudWatch alarm metrics',
      unit: 'metric',
      count: periods.length,
      unitPrice: high ? IDLE_PRICES.highResolutionAlarmMetricMonth : IDLE_PRICES.alarmMetricMonth,
    },
  ];
};

const webAcl: Pricer = ({ resource }) => [
  { item: 'WAF web ACLs', unit: 'ACL', count: 1, unitPrice: IDLE_PRICES.webAclMonth },
  {
    item: 'WAF rules (a managed rule group is one)',
    unit: 'rule',
    count: ((props(resource).Rules as unknown[] | undefined) ?? []).length,
    unitPrice: IDLE_PRICES.webAclRuleMonth,
  },
];

/** Provisioned capacity of a table and its global secondary indexes; on-demand tables cost nothing idle. */
const dynamoDbTable: Pricer = ({ resource }) => {
  const p = props(resource);
  if (p.BillingMode === 'PAY_PER_REQUEST') return [];
  const throughputs = [
    p.ProvisionedThroughput,
    ...((p.GlobalSecondaryIndexes as { ProvisionedThroughput?: unknown }[] | undefined) ?? []).map(
      (index) => index.ProvisionedThroughput,
    ),
  ] as ({ ReadCapacityUnits?: number; WriteCapacityUnits?: number } | undefined)[];
  const sum = (key: 'ReadCapacityUnits' | 'WriteCapacityUnits') =>
    throughputs.reduce((total, t) => total + (t ? numberAt(t, key, 0) : 0), 0);
  return [
    {
      item: 'DynamoDB provisioned reads',
      unit: 'RCU-hour',
      count: sum('ReadCapacityUnits') * MONTH_HOURS,
      unitPrice: IDLE_PRICES.dynamoDbRcuHour,
    },
    {
      item: 'DynamoDB provisioned writes',
      unit: 'WCU-hour',
      count: sum('WriteCapacityUnits') * MONTH_HOURS,
      unitPrice: IDLE_PRICES.dynamoDbWcuHour,
    },
  ];
};

/** A Fargate service runs its desired count of tasks all month, whatever the traffic. */
const fargateService: Pricer = (context) => {
  const p = props(context.resource);
  const task = props(requireResource(context, p.TaskDefinition, 'TaskDefinition'));
  const tasks = numberAt(p, 'DesiredCount', 1);
  const vcpu = numberAt(task, 'Cpu', 256) / 1024;
  const gb = numberAt(task, 'Memory', 512) / 1024;
  const what = `Fargate tasks (${tasks} × ${vcpu} vCPU, ${gb} GB)`;
  return [
    {
      item: `${what}: vCPU`,
      unit: 'vCPU-hour',
      count: tasks * vcpu * MONTH_HOURS,
      unitPrice: IDLE_PRICES.fargateVcpuHour,
    },
    {
      item: `${what}: memory`,
      unit: 'GB-hour',
      count: tasks * gb * MONTH_HOURS,
      unitPrice: IDLE_PRICES.fargateGbHour,
    },
  ];
};

const hourly =
  (item: string, unitPrice: number): Pricer =>
  () => [{ item, unit: 'hour', count: MONTH_HOURS, unitPrice }];
const monthly =
  (item: string, unit: string, unitPrice: number): Pricer =>
  () => [{ item, unit, count: 1, unitPrice }];

/** Why a type costs nothing while the stage is idle. */
const FREE_WHEN_IDLE: Readonly<Record<string, string>> = {
  'AWS::ApiGateway::Account': 'configuration',
  'AWS::ApiGateway::Deployment': 'configuration',
  'AWS::ApiGateway::GatewayResponse': 'configuration',
  'AWS::ApiGateway::Method': 'configuration',
  'AWS::ApiGateway::Model': 'configuration',
  'AWS::ApiGateway::RequestValidator': 'configuration',
  'AWS::ApiGateway::Resource': 'configuration',
  'AWS::ApiGateway::RestApi': 'billed per request',
  'AWS::ApiGateway::Stage': 'billed per request',
  'AWS::ApiGateway::VpcLink': 'billed through the load balancer it reaches',
  'AWS::EC2::FlowLog': 'billed per GB of log data',
  'AWS::EC2::InternetGateway': 'configuration',
  'AWS::EC2::Route': 'configuration',
  'AWS::EC2::RouteTable': 'configuration',
  'AWS::EC2::SecurityGroup': 'configuration',
  'AWS::EC2::Subnet': 'configuration',
  'AWS::EC2::SubnetRouteTableAssociation': 'configuration',
  'AWS::EC2::VPC': 'configuration',
  'AWS::EC2::VPCGatewayAttachment': 'configuration',
  'AWS::ECS::Cluster': 'billed through its tasks (Container Insights per metric received)',
  'AWS::ECS::TaskDefinition': 'billed through the service that runs it',
  'AWS::ElasticLoadBalancingV2::Listener': 'configuration',
  'AWS::ElasticLoadBalancingV2::TargetGroup': 'configuration',
  'AWS::Events::Rule': 'scheduled and AWS-service events are free; the runs they start are listed apart',
  'AWS::IAM::Policy': 'configuration',
  'AWS::IAM::Role': 'configuration',
  'AWS::KinesisFirehose::DeliveryStream': 'billed per GB ingested',
  'AWS::Lambda::EventInvokeConfig': 'configuration',
  'AWS::Lambda::Function': 'billed per request and GB-s',
  'AWS::Lambda::LayerVersion': 'code storage, within the 75 GB a region includes',
  'AWS::Lambda::Permission': 'configuration',
  'AWS::Logs::LogGroup': 'billed per GB ingested and stored',
  'AWS::Logs::LogStream': 'billed with its log group',
  'AWS::Logs::SubscriptionFilter': 'billed with its log group',
  'AWS::S3::Bucket': 'billed per GB stored and per request',
  'AWS::S3::BucketPolicy': 'configuration',
  'AWS::SNS::Subscription': 'billed per delivery',
  'AWS::SNS::Topic': 'billed per publish',
  'AWS::SNS::TopicPolicy': 'configuration',
  'AWS::SQS::Queue': 'billed per request',
  'AWS::SQS::QueuePolicy': 'configuration',
  'AWS::StepFunctions::StateMachine': 'billed per state transition',
  'AWS::WAFv2::WebACLAssociation': 'configuration',
  'Custom::S3AutoDeleteObjects': 'runs only when a bucket is deleted',
};

/** The types that cost something whatever the traffic (some only when configured so). */
const PRICED: Readonly<Record<string, Pricer>> = {
  'AWS::KMS::Key': monthly('KMS customer managed keys', 'key', IDLE_PRICES.kmsKeyMonth),
  'AWS::CloudWatch::Alarm': metricAlarm,
  'AWS::CloudWatch::CompositeAlarm': monthly(
    'CloudWatch composite alarms',
    'alarm',
    IDLE_PRICES.compositeAlarmMonth,
  ),
  'AWS::CloudWatch::Dashboard': monthly('CloudWatch dashboards', 'dashboard', IDLE_PRICES.dashboardMonth),
  'AWS::WAFv2::WebACL': webAcl,
  'AWS::Lambda::Version': provisionedConcurrency,
  'AWS::Lambda::Alias': provisionedConcurrency,
  'AWS::DynamoDB::Table': dynamoDbTable,
  'AWS::ECS::Service': fargateService,
  'AWS::EC2::NatGateway': hourly('NAT gateways', IDLE_PRICES.natGatewayHour),
  'AWS::EC2::EIP': hourly('public IPv4 addresses (Elastic IPs)', IDLE_PRICES.publicIpv4Hour),
  'AWS::ElasticLoadBalancingV2::LoadBalancer': hourly('load balancers', IDLE_PRICES.loadBalancerHour),
  // Gateway endpoints (S3, DynamoDB) are free; an interface endpoint would cost by the hour.
  'AWS::EC2::VPCEndpoint': (context) => {
    if (props(context.resource).VpcEndpointType === 'Gateway') return [];
    throw new UnpricedResourceError(
      `${context.stack.stackName}/${context.id}: an interface VPC endpoint is billed by the hour and zone: price it in lib/idle-cost.ts`,
    );
  },
};

const cents = (value: number) => Math.round(value * 100) / 100;

/** Runs of `expression` in a 30-day month: a (non-leap) year's runs, pro rata. */
export function runsPerMonth(expression: string): number {
  const start = new Date(Date.UTC(2025, 0, 1));
  const end = new Date(Date.UTC(2026, 0, 1));
  let runs = 0;
  // From just before the start, so that a rate's first run, at the start, counts.
  let at = nextFireTime(expression, new Date(start.getTime() - 1), start);
  for (; at < end; at = nextFireTime(expression, at, start)) runs++;
  return (runs * 30) / 365;
}

function scheduledRuns(stack: StackResources, id: string, rule: TemplateResource): ScheduledRuns[] {
  const p = props(rule);
  if (typeof p.ScheduleExpression !== 'string' || p.State === 'DISABLED') return [];
  const runs = runsPerMonth(p.ScheduleExpression);
  return ((p.Targets as { Arn?: unknown }[] | undefined) ?? []).map((target) => {
    const resource = referenced(stack, target.Arn);
    const base = {
      stackName: stack.stackName,
      rule: id,
      expression: p.ScheduleExpression as string,
      runsPerMonth: runs,
    };
    if (resource?.Type === 'AWS::StepFunctions::StateMachine') return { ...base, target: 'state machine' };
    if (resource?.Type !== 'AWS::Lambda::Function') {
      throw new UnpricedResourceError(`${stack.stackName}/${id}: a schedule of something not priced here`);
    }
    const fn = props(resource);
    const gbSeconds = (numberAt(fn, 'MemorySize', 128) / 1024) * numberAt(fn, 'Timeout', 3);
    const ceiling = runs * (gbSeconds * IDLE_PRICES.lambdaGbSecond + IDLE_PRICES.lambdaRequest);
    return { ...base, target: 'function', lambdaCeiling: ceiling };
  });
}

/** The stacks of a synthesized app (`synthesizeStage`, or `cdk synth`'s cloud assembly) and their resources. */
export function stackResourcesOf(assembly: CloudAssembly): StackResources[] {
  return assembly.stacks.map((stack) => ({
    stackName: stack.stackName,
    resources: stack.template.Resources ?? {},
  }));
}

/** The idle monthly cost of the stacks' resources, item by item, and the runs their schedules start. */
export function idleCost(stacks: readonly StackResources[]): IdleCost {
  const byItem = new Map<string, Charge>();
  const schedules: ScheduledRuns[] = [];
  for (const stack of stacks) {
    for (const [id, resource] of Object.entries(stack.resources)) {
      const pricer = PRICED[resource.Type];
      if (!pricer && !(resource.Type in FREE_WHEN_IDLE)) {
        throw new UnpricedResourceError(
          `${stack.stackName}/${id}: no idle price for ${resource.Type}: add it to PRICED or FREE_WHEN_IDLE in lib/idle-cost.ts`,
        );
      }
      for (const charge of pricer?.({ stack, id, resource }) ?? []) {
        const key = `${charge.item}\u0000${charge.unitPrice}`;
        const seen = byItem.get(key);
        byItem.set(key, seen ? { ...seen, count: seen.count + charge.count } : charge);
      }
      if (resource.Type === 'AWS::Events::Rule') schedules.push(...scheduledRuns(stack, id, resource));
    }
  }
  const charges = [...byItem.values()]
    .filter((charge) => charge.count > 0)
    .map((charge) => ({ ...charge, monthly: cents(charge.count * charge.unitPrice) }));
  return { charges, total: cents(charges.reduce((sum, c) => sum + c.monthly, 0)), schedules };
}

/** Dollars as the docs write them: `$1,234.50`. */
export const usd = (value: number) =>
  `$${value.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
const plural = (unit: string, count: number) => (count === 1 || unit.endsWith('-s') ? unit : `${unit}s`);
// A price below a cent, or between cents, is written out whole.
const unitPrice = (value: number) =>
  Number.isInteger(Math.round(value * 1e6) / 1e4) ? usd(value) : `$${value}`;

/** The charges as the Markdown table docs/deploy.md quotes. */
export function idleCostTable(cost: IdleCost): string {
  const rows = cost.charges.map(
    (c) =>
      `| ${c.item} | ${c.count.toLocaleString('en-US', { maximumFractionDigits: 1 })} ${plural(c.unit, c.count)} | ${unitPrice(c.unitPrice)} | ${usd(c.monthly)} |`,
  );
  return [
    '| what | quantity a month | price | a month |',
    '|---|---|---|---|',
    ...rows,
    `| **total** | | | **${usd(cost.total)}** |`,
  ].join('\n');
}

/** The schedules as the Markdown table docs/deploy.md quotes. */
export function scheduledRunsTable(cost: IdleCost): string {
  const rows = cost.schedules.map(
    (s) =>
      `| ${s.rule.replace(/[0-9A-F]{8}$/, '')} | \`${s.expression}\` | ${s.target} | ${s.runsPerMonth.toLocaleString('en-US', { maximumFractionDigits: 1 })} | ${s.lambdaCeiling === undefined ? 'by the data it reads' : `at most ${usd(s.lambdaCeiling)}`} |`,
  );
  return [
    '| schedule | expression | starts | runs a month | compute a month |',
    '|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

/** What `cdk destroy` leaves behind: the resources whose deletion policy keeps them. */
export function leftAfterDestroy(stacks: readonly StackResources[]): StackResources[] {
  return stacks.map((stack) => ({
    stackName: stack.stackName,
    resources: Object.fromEntries(
      Object.entries(stack.resources).filter(([, r]) => r.DeletionPolicy?.startsWith('Retain')),
    ),
  }));
}

/** {@link leftAfterDestroy} as the Markdown table docs/deploy.md quotes: each stack's kept resources by type. */
export function leftAfterDestroyTable(stacks: readonly StackResources[]): string {
  const rows = leftAfterDestroy(stacks).flatMap((stack) => {
    const counts = new Map<string, number>();
    for (const { Type } of Object.values(stack.resources)) counts.set(Type, (counts.get(Type) ?? 0) + 1);
    return [...counts].map(([type, count]) => `| ${stack.stackName} | \`${type}\` | ${count} |`);
  });
  return ['| stack | kept | how many |', '|---|---|---|', ...rows].join('\n');
}
