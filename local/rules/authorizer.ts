import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import type { LocalDeployment, PolicyDocument } from '#local/deployment/deployment.ts';

/**
 * IAM and KMS as AWS evaluates them, for the local platform: a call is allowed only if the caller's
 * identity policies (the synthesized policies of its role) or the resource's policy allow it and
 * nothing denies it, and a call that uses a customer managed key is allowed only if the key policy
 * allows it too. The evaluation is @cloud-copilot/iam-simulate's (AGPL-3.0, used by the local platform
 * only: no deployed bundle contains it).
 */

/** Who makes a call: a role's session (a function, a state machine) or an AWS service acting for a resource. */
export type Principal =
  | { readonly kind: 'role'; readonly roleArn: string; readonly session: string }
  | { readonly kind: 'service'; readonly service: string; readonly sourceArn: string };

export interface AuthorizationRequest {
  readonly principal: Principal;
  /** `service:Action`, e.g. `s3:GetObject`. */
  readonly action: string;
  readonly resource: string;
  /** Condition keys of the request besides the ones every request has. */
  readonly context?: Readonly<Record<string, string | string[]>>;
}

/** What AWS answers a denied call with; the message has AWS's shape, naming principal, action and resource. */
export class AccessDeniedError extends Error {
  constructor(
    readonly request: AuthorizationRequest,
    readonly explicit: boolean,
    /** The caller as AWS names it: the role session's ARN, or the service principal. */
    readonly caller: string,
  ) {
    super(denialMessage(request, explicit, caller));
    this.name = 'AccessDeniedException';
  }
}

export function principalArn(principal: Principal, account: string): string {
  if (principal.kind === 'service') return principal.service;
  const role = principal.roleArn.slice(principal.roleArn.lastIndexOf('/') + 1);
  return `arn:aws:sts::${account}:assumed-role/${role}/${principal.session}`;
}

function denialMessage(request: AuthorizationRequest, explicit: boolean, caller: string): string {
  const why = explicit
    ? 'with an explicit deny in a policy'
    : request.principal.kind === 'service'
      ? `because no resource-based policy allows the ${request.action} action`
      : `because no identity-based policy allows the ${request.action} action`;
  return `User: ${caller} is not authorized to perform: ${request.action} on resource: ${request.resource} ${why}`;
}

/** Cached decisions: the same role asking for the same thing gets the same answer. */
const CACHE_LIMIT = 20_000;

export class Authorizer {
  private readonly decisions = new Map<string, Promise<boolean | 'explicit'>>();

  constructor(private readonly deployment: LocalDeployment) {}

  /** Resolves when AWS would allow the call; rejects with {@link AccessDeniedError} when it would not. */
  async authorize(request: AuthorizationRequest): Promise<void> {
    const key = JSON.stringify([request.principal, request.action, request.resource, request.context ?? {}]);
    let decision = this.decisions.get(key);
    if (!decision) {
      if (this.decisions.size >= CACHE_LIMIT) this.decisions.clear();
      decision = this.evaluate(request);
      this.decisions.set(key, decision);
    }
    const allowed = await decision;
    if (allowed !== true) {
      const caller = principalArn(request.principal, this.deployment.env.account);
      throw new AccessDeniedError(request, allowed === 'explicit', caller);
    }
  }

  /**
   * Whether `principal` may use the customer managed key `keyArn` for each KMS action, as a service
   * using the key on its behalf (S3, SNS, DynamoDB) requires: the key policy, and where it delegates
   * to IAM, the caller's identity policies.
   */
  async authorizeKey(
    principal: Principal,
    keyArn: string,
    actions: readonly string[],
    viaService: string,
  ): Promise<void> {
    for (const action of actions) {
      await this.authorize({
        principal,
        action,
        resource: keyArn,
        context: { 'kms:ViaService': viaService },
      });
    }
  }

  private async evaluate(request: AuthorizationRequest): Promise<boolean | 'explicit'> {
    const { account } = this.deployment.env;
    const { principal } = request;
    const identityPolicies =
      principal.kind === 'role'
        ? (this.deployment.roles.get(principal.roleArn)?.policies ?? []).map((p) => ({
            name: p.name,
            policy: p.document,
          }))
        : [];
    const context: Record<string, string | string[]> = {
      // Locally the SDK talks plain HTTP to loopback; in AWS it is TLS, which bucket policies demand.
      'aws:SecureTransport': 'true',
      ...(principal.kind === 'role'
        ? { 'aws:PrincipalArn': principal.roleArn, 'aws:PrincipalAccount': account }
        : { 'aws:SourceAccount': account, 'aws:SourceArn': principal.sourceArn }),
      ...(request.action.startsWith('kms:') ? { 'kms:CallerAccount': account } : {}),
      ...request.context,
    };
    const simulation: Simulation = {
      request: {
        principal: principalArn(principal, account),
        action: request.action,
        resource: { resource: request.resource, accountId: account },
        contextVariables: context,
      },
      identityPolicies,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: this.resourcePolicy(request.resource),
    };
    const result = await runSimulation(simulation, {});
    if (result.resultType === 'error') {
      throw new Error(
        `the local IAM evaluator refused ${request.action} on ${request.resource}: ${JSON.stringify(result.errors)}`,
      );
    }
    if (result.overallResult === 'Allowed') return true;
    return result.overallResult === 'ExplicitlyDenied' ? 'explicit' : false;
  }

  private resourcePolicy(resource: string): PolicyDocument | undefined {
    const d = this.deployment;
    if (resource.startsWith('arn:aws:s3:::')) {
      const bucket = resource.slice('arn:aws:s3:::'.length).split('/')[0]!;
      return d.buckets.get(bucket)?.policy;
    }
    if (resource.startsWith('arn:aws:kms:')) return d.keys.get(resource);
    if (resource.startsWith('arn:aws:sns:')) return d.topics.get(resource)?.policy;
    if (resource.startsWith('arn:aws:sqs:')) return d.queues.get(resource)?.policy;
    return undefined;
  }
}
