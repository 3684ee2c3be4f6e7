// Typings for asl-validator's JS API (the package ships none).
declare module 'asl-validator' {
  interface AslValidationResult {
    readonly isValid: boolean;
    readonly errors: readonly { readonly message: string; readonly path?: string }[];
    errorsText(separator?: string): string;
  }
  interface AslValidationOptions {
    /** Check the JSONPath expressions (default true). */
    readonly checkPaths: boolean;
    /** Check that each Task's Resource is an ARN (default true). */
    readonly checkArn: boolean;
  }
  export default function aslValidator(
    definition: unknown,
    options?: AslValidationOptions,
  ): AslValidationResult;
}
