/** An Amazon States Language definition, as the state machine resource in the synthesized template holds it. */
export type AslDefinition = { StartAt: string; States: Record<string, AslState> } & Record<string, unknown>;
export type AslState = Record<string, unknown> & { Type: string };

/**
 * The one transformation the local runner applies (documented in the README): a Distributed Map becomes
 * an inline Map. Keel's Distributed Maps read their items from the state input (no ItemReader, no
 * ResultWriter), so iterating them inline visits the same items with the same processor.
 */
export function inlineDistributedMaps(definition: AslDefinition): AslDefinition {
  const visit = (states: Record<string, AslState>): Record<string, AslState> =>
    Object.fromEntries(
      Object.entries(states).map(([name, state]) => {
        if (state.Type !== 'Map') return [name, state];
        const processor = (state.ItemProcessor ?? state.Iterator) as AslDefinition & {
          ProcessorConfig?: { Mode?: string };
        };
        const inner = { ...processor, States: visit(processor.States) };
        if (processor.ProcessorConfig?.Mode !== 'DISTRIBUTED')
          return [name, { ...state, ItemProcessor: inner }];
        for (const unsupported of ['ItemReader', 'ResultWriter', 'ItemBatcher']) {
          if (unsupported in state) {
            throw new Error(`Map state "${name}" uses ${unsupported}, which the local runner cannot run`);
          }
        }
        const { ProcessorConfig: _config, ...rest } = inner as typeof inner & { ProcessorConfig?: unknown };
        const {
          Label: _label,
          ToleratedFailurePercentage: _p,
          ToleratedFailureCount: _c,
          ...mapState
        } = state;
        return [name, { ...mapState, ItemProcessor: { ...rest, ProcessorConfig: { Mode: 'INLINE' } } }];
      }),
    );
  return { ...definition, States: visit(definition.States) };
}

/**
 * The other transformation, local only: an execution timeout longer than a Node.js timer holds
 * (`maxSeconds`; the rollout machine's, a 30-day bake and its decision) is capped to it, since the
 * emulator's single timer would otherwise fire at once and time the execution out as it starts.
 */
export function capExecutionTimeout(definition: AslDefinition, maxSeconds: number): AslDefinition {
  const timeout = definition.TimeoutSeconds;
  return typeof timeout === 'number' && timeout > maxSeconds
    ? { ...definition, TimeoutSeconds: maxSeconds }
    : definition;
}
