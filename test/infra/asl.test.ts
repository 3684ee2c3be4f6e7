import aslValidator from 'asl-validator';
import { describe, expect, it } from 'vitest';
import { resolveIntrinsics } from '../support/asl.ts';
import { DOCUMENTED_CONFIGS, synthesizeConfig } from '../support/documented-configs.ts';

/**
 * Every state machine of every documented configuration is valid Amazon States Language, as
 * asl-validator checks it (the JSON schema of each state, transitions to existing states, a terminal
 * state, JSONPath syntax, task ARNs): what Step Functions would refuse at deploy is refused here.
 * Intrinsics in a definition resolve to stand-ins of the same shape (`resolveIntrinsics`, the local
 * runner's): function ARNs stay ARNs.
 */
/** Each state machine's definition in the synthesized app of one configuration, by where it is. */
function definitionsOf(name: string, input: unknown) {
  return synthesizeConfig(name, input).stacks.flatMap((stack) =>
    Object.entries(
      stack.template.Resources as Record<string, { Type: string; Properties: Record<string, unknown> }>,
    )
      .filter(([, resource]) => resource.Type === 'AWS::StepFunctions::StateMachine')
      .map(([id, resource]) => ({
        where: `${stack.stackName}/${id}`,
        definition: JSON.parse(resolveIntrinsics(resource.Properties.DefinitionString)),
      })),
  );
}

describe.each(Object.entries(DOCUMENTED_CONFIGS))('the state machines of %s', (name, input) => {
  it('are valid Amazon States Language', () => {
    const definitions = definitionsOf(name, input);
    // The ETL, retrain and batch-scoring pipelines at least.
    expect(definitions.length).toBeGreaterThanOrEqual(3);
    const invalid = definitions.flatMap(({ where, definition }) => {
      const { isValid, errorsText } = aslValidator(definition);
      return isValid ? [] : [`${where}: ${errorsText('; ')}`];
    });
    expect(invalid).toEqual([]);
  });
});

describe('the check', () => {
  it('refuses a synthesized definition broken the way Step Functions would refuse it', () => {
    const [first] = definitionsOf('defaults', {});
    const definition = first!.definition as { StartAt: string };
    expect(aslValidator(structuredClone(definition)).isValid).toBe(true);
    const result = aslValidator({ ...definition, StartAt: 'No such state' });
    expect(result.isValid).toBe(false);
    expect(result.errorsText()).toContain('No such state');
  });
});
