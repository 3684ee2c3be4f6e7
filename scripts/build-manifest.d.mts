import type { Metafile } from 'esbuild';

export declare const BUILD_MANIFEST: string;

/** The manifest of a build: when it started (ms since the epoch) and the files it read, relative to it. */
export interface BuildManifest {
  readonly builtAt: number;
  readonly inputs: readonly string[];
}

export declare function writeBuildManifest(
  outdir: string,
  options: {
    readonly root: string;
    readonly builtAt: number;
    readonly metafile: Metafile;
    readonly configFiles: readonly string[];
    /** Inputs that are not files (a plugin's namespace). */
    readonly ignoredInputs?: RegExp;
  },
): void;

export declare function buildIsCurrent(dir: string): boolean;
