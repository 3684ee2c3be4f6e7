/**
 * CloudFormation's intrinsic functions, evaluated the way CloudFormation would evaluate them for the
 * local stage: every resource gets the physical name it would get (its explicit name, else a
 * deterministic `<stack>-<logical id>`), so a policy's `Fn::GetAtt [Bucket, Arn]` becomes the ARN the
 * local bucket really has, and a cross-stack `Fn::ImportValue` becomes the exporting stack's value.
 */

export interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Condition?: string;
  readonly Metadata?: Record<string, unknown>;
}

export interface Template {
  readonly Resources: Record<string, TemplateResource>;
  readonly Outputs?: Record<string, { Value: unknown; Export?: { Name: unknown } }>;
  readonly Parameters?: Record<string, { Default?: unknown }>;
  readonly Conditions?: Record<string, unknown>;
}

export interface AccountEnvironment {
  readonly account: string;
  readonly region: string;
}

/** What `AWS::NoValue` resolves to: dropped from the arrays and objects that hold it. */
const NO_VALUE = Symbol('AWS::NoValue');

/** A value left as CloudFormation would leave it unresolved here (an attribute nothing local has). */
export class UnresolvableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnresolvableError';
  }
}

/** Resolves intrinsics in the templates of one stage (one account and region), across its stacks. */
export class StageResolver {
  private readonly exports = new Map<string, { stack: string; value: unknown }>();

  constructor(
    readonly templates: Readonly<Record<string, Template>>,
    readonly env: AccountEnvironment,
  ) {
    for (const [stack, template] of Object.entries(templates)) {
      for (const output of Object.values(template.Outputs ?? {})) {
        if (!output.Export) continue;
        const name = this.resolve(stack, output.Export.Name);
        if (typeof name === 'string') this.exports.set(name, { stack, value: output.Value });
      }
    }
  }

  /** The value of `value` in `stack` with every intrinsic function evaluated. */
  resolve(stack: string, value: unknown): unknown {
    const resolved = this.evaluate(stack, value);
    return resolved === NO_VALUE ? undefined : resolved;
  }

  /** The physical id CloudFormation would give a resource (what `Ref` returns for names). */
  physicalName(stack: string, logicalId: string): string {
    const resource = this.resource(stack, logicalId);
    const explicit = NAME_PROPERTY[resource.Type];
    const given = explicit ? resource.Properties?.[explicit] : undefined;
    if (given !== undefined) return String(this.resolve(stack, given));
    // CloudFormation's generated names are `<stack>-<logical id>-<random>`; locally they are stable.
    const max = resource.Type === 'AWS::IAM::Role' || resource.Type === 'AWS::Lambda::Function' ? 64 : 128;
    return `${stack}-${logicalId}`.slice(0, max);
  }

  /** The ARN of a resource of a type Keel's rules care about. */
  arnOf(stack: string, logicalId: string): string {
    const { account, region } = this.env;
    const resource = this.resource(stack, logicalId);
    const name = this.physicalName(stack, logicalId);
    switch (resource.Type) {
      case 'AWS::S3::Bucket':
        return `arn:aws:s3:::${name}`;
      case 'AWS::DynamoDB::Table':
        return `arn:aws:dynamodb:${region}:${account}:table/${name}`;
      case 'AWS::Lambda::Function':
        return `arn:aws:lambda:${region}:${account}:function:${name}`;
      case 'AWS::IAM::Role':
        return `arn:aws:iam::${account}:role/${name}`;
      case 'AWS::SQS::Queue':
        return `arn:aws:sqs:${region}:${account}:${name}`;
      case 'AWS::SNS::Topic':
        return `arn:aws:sns:${region}:${account}:${name}`;
      case 'AWS::KMS::Key':
        return `arn:aws:kms:${region}:${account}:key/${keyId(stack, logicalId)}`;
      case 'AWS::Logs::LogGroup':
        return `arn:aws:logs:${region}:${account}:log-group:${name}:*`;
      case 'AWS::StepFunctions::StateMachine':
        return `arn:aws:states:${region}:${account}:stateMachine:${name}`;
      case 'AWS::Events::Rule':
        return `arn:aws:events:${region}:${account}:rule/${name}`;
      case 'AWS::CloudWatch::Alarm':
      case 'AWS::CloudWatch::CompositeAlarm':
        return `arn:aws:cloudwatch:${region}:${account}:alarm:${name}`;
      case 'AWS::Lambda::LayerVersion':
        return `arn:aws:lambda:${region}:${account}:layer:${name}:1`;
      default:
        return `arn:aws:${resource.Type.split('::')[1]?.toLowerCase()}:${region}:${account}:${name}`;
    }
  }

  resource(stack: string, logicalId: string): TemplateResource {
    const resource = this.templates[stack]?.Resources[logicalId];
    if (!resource) throw new UnresolvableError(`stack ${stack} has no resource ${logicalId}`);
    return resource;
  }

  /** Whether a resource exists in this configuration (its Condition, if any, is true). */
  exists(stack: string, logicalId: string): boolean {
    const condition = this.resource(stack, logicalId).Condition;
    return condition === undefined || this.condition(stack, condition);
  }

  condition(stack: string, name: string): boolean {
    const expression = this.templates[stack]?.Conditions?.[name];
    if (expression === undefined) throw new UnresolvableError(`stack ${stack} has no condition ${name}`);
    return Boolean(this.resolve(stack, expression));
  }

  private ref(stack: string, name: string): unknown {
    const { account, region } = this.env;
    const pseudo: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::Region': region,
      'AWS::AccountId': account,
      'AWS::URLSuffix': 'amazonaws.com',
      'AWS::StackName': stack,
      'AWS::StackId': `arn:aws:cloudformation:${region}:${account}:stack/${stack}/local`,
    };
    if (name === 'AWS::NoValue') return NO_VALUE;
    if (name in pseudo) return pseudo[name];
    const parameter = this.templates[stack]?.Parameters?.[name];
    if (parameter) return parameter.Default ?? '';
    const resource = this.resource(stack, name);
    switch (resource.Type) {
      case 'AWS::SNS::Topic':
      case 'AWS::StepFunctions::StateMachine':
        return this.arnOf(stack, name);
      case 'AWS::SQS::Queue':
        return `https://sqs.${region}.amazonaws.com/${account}/${this.physicalName(stack, name)}`;
      case 'AWS::KMS::Key':
        return keyId(stack, name);
      default:
        return this.physicalName(stack, name);
    }
  }

  private getAtt(stack: string, logicalId: string, attribute: string): unknown {
    const resource = this.resource(stack, logicalId);
    const name = this.physicalName(stack, logicalId);
    if (attribute === 'Arn' || attribute === 'TopicArn') return this.arnOf(stack, logicalId);
    const { region } = this.env;
    const byType: Record<string, Record<string, () => unknown>> = {
      'AWS::S3::Bucket': {
        DomainName: () => `${name}.s3.amazonaws.com`,
        RegionalDomainName: () => `${name}.s3.${region}.amazonaws.com`,
      },
      'AWS::SQS::Queue': { QueueName: () => name, QueueUrl: () => this.ref(stack, logicalId) },
      'AWS::SNS::Topic': { TopicName: () => name },
      'AWS::StepFunctions::StateMachine': { Name: () => name },
      'AWS::IAM::Role': { RoleId: () => `AROA${keyId(stack, logicalId).replace(/-/g, '').slice(0, 17)}` },
      'AWS::KMS::Key': { KeyId: () => keyId(stack, logicalId) },
      'AWS::ApiGateway::RestApi': { RootResourceId: () => `${logicalId}-root` },
    };
    const attr = byType[resource.Type]?.[attribute];
    // Attributes nothing local reads (stream ARNs, endpoints): a stable placeholder.
    return attr ? attr() : `${stack}.${logicalId}.${attribute}`;
  }

  private evaluate(stack: string, value: unknown): unknown {
    if (Array.isArray(value)) {
      return value.map((item) => this.evaluate(stack, item)).filter((item) => item !== NO_VALUE);
    }
    if (value === null || typeof value !== 'object') {
      return typeof value === 'string' ? this.dynamicReference(stack, value) : value;
    }
    const node = value as Record<string, unknown>;
    const keys = Object.keys(node);
    const [fn] = keys;
    if (
      keys.length === 1 &&
      fn !== undefined &&
      (fn === 'Ref' || fn.startsWith('Fn::') || fn === 'Condition')
    ) {
      return this.intrinsic(stack, fn, node[fn]);
    }
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      const resolved = this.evaluate(stack, node[key]);
      if (resolved !== NO_VALUE) out[key] = resolved;
    }
    return out;
  }

  private intrinsic(stack: string, fn: string, arg: unknown): unknown {
    const ev = (v: unknown) => this.evaluate(stack, v);
    switch (fn) {
      case 'Ref':
        return this.ref(stack, String(arg));
      case 'Condition':
        return this.condition(stack, String(arg));
      case 'Fn::GetAtt': {
        const [logicalId, attribute] = typeof arg === 'string' ? arg.split('.') : (arg as string[]);
        return this.getAtt(stack, String(logicalId), String(ev(attribute)));
      }
      case 'Fn::Join': {
        const [separator, parts] = arg as [string, unknown];
        return (ev(parts) as unknown[]).map(String).join(separator);
      }
      case 'Fn::Select': {
        const [index, list] = arg as [unknown, unknown];
        return (ev(list) as unknown[])[Number(ev(index))];
      }
      case 'Fn::Split': {
        const [separator, text] = arg as [string, unknown];
        return String(ev(text)).split(separator);
      }
      case 'Fn::Sub': {
        const [text, variables] =
          typeof arg === 'string' ? [arg, {}] : (arg as [string, Record<string, unknown>]);
        const vars = ev(variables) as Record<string, unknown>;
        return text.replace(/\$\{([^}!][^}]*)\}/g, (_, name: string) => {
          if (name in vars) return String(vars[name]);
          const [logicalId, attribute] = name.split('.');
          return String(attribute ? this.getAtt(stack, logicalId!, attribute) : this.ref(stack, name));
        });
      }
      case 'Fn::ImportValue': {
        const name = String(ev(arg));
        const exported = this.exports.get(name);
        if (!exported) throw new UnresolvableError(`${stack} imports "${name}", which no stack exports`);
        return this.evaluate(exported.stack, exported.value);
      }
      case 'Fn::GetStackOutput': {
        // A weak cross-stack reference: the named stack's output, read at deploy time.
        const { StackName, OutputName } = ev(arg) as { StackName: string; OutputName: string };
        const output = this.templates[StackName]?.Outputs?.[OutputName];
        if (!output)
          throw new UnresolvableError(`${stack} reads output ${OutputName} of ${StackName}, which has none`);
        return this.evaluate(StackName, output.Value);
      }
      case 'Fn::If': {
        const [condition, whenTrue, whenFalse] = arg as [string, unknown, unknown];
        return this.condition(stack, condition) ? ev(whenTrue) : ev(whenFalse);
      }
      case 'Fn::Equals': {
        const [a, b] = arg as [unknown, unknown];
        return JSON.stringify(ev(a)) === JSON.stringify(ev(b));
      }
      case 'Fn::Not':
        return !(ev((arg as unknown[])[0]) as boolean);
      case 'Fn::And':
        return (arg as unknown[]).every((c) => ev(c));
      case 'Fn::Or':
        return (arg as unknown[]).some((c) => ev(c));
      case 'Fn::Base64':
        return Buffer.from(String(ev(arg))).toString('base64');
      case 'Fn::GetAZs':
        return ['a', 'b', 'c'].map((az) => `${this.env.region}${az}`);
      default:
        throw new UnresolvableError(`${stack}: intrinsic ${fn} is not supported locally`);
    }
  }

  /** `{{resolve:ssm:NAME}}`: the value of the stage's own SSM parameter of that name. */
  private dynamicReference(stack: string, text: string): unknown {
    const match = /^\{\{resolve:ssm:([^:}]+)(?::\d+)?\}\}$/.exec(text);
    if (!match) return text;
    for (const [owner, template] of Object.entries(this.templates)) {
      for (const resource of Object.values(template.Resources)) {
        if (resource.Type !== 'AWS::SSM::Parameter') continue;
        if (this.resolve(owner, resource.Properties?.Name) === match[1]) {
          return this.resolve(owner, resource.Properties?.Value);
        }
      }
    }
    throw new UnresolvableError(
      `${stack} reads SSM parameter ${match[1]}, which no stack of the stage creates`,
    );
  }
}

/** The property that holds a resource's explicit physical name, per type. */
const NAME_PROPERTY: Record<string, string> = {
  'AWS::S3::Bucket': 'BucketName',
  'AWS::DynamoDB::Table': 'TableName',
  'AWS::Lambda::Function': 'FunctionName',
  'AWS::IAM::Role': 'RoleName',
  'AWS::SQS::Queue': 'QueueName',
  'AWS::SNS::Topic': 'TopicName',
  'AWS::Logs::LogGroup': 'LogGroupName',
  'AWS::StepFunctions::StateMachine': 'StateMachineName',
  'AWS::Events::Rule': 'Name',
  'AWS::CloudWatch::Alarm': 'AlarmName',
  'AWS::CloudWatch::CompositeAlarm': 'AlarmName',
  'AWS::Lambda::LayerVersion': 'LayerName',
  'AWS::KinesisFirehose::DeliveryStream': 'DeliveryStreamName',
};

/** A KMS key id (a UUID) derived from the key's stack and logical id, stable across runs. */
function keyId(stack: string, logicalId: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (const c of `${stack}/${logicalId}`) {
    h1 = Math.imul(h1 ^ c.charCodeAt(0), 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c.charCodeAt(0), 0x5bd1e995) >>> 0;
  }
  const hex = (h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0')).repeat(2);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
