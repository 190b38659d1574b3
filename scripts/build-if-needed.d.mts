/** Types of build-if-needed.mjs (see its module doc). */

/** The stamp file, relative to the package root. */
export declare const STAMP: string;
/** When the running build began (written by --begin), relative to the package root. */
export declare const BEGIN: string;
/** The build output whose absence always means a build, relative to the package root. */
export declare const OUTPUT: string;
/** The most recently modified build input under `root`, path relative to it. */
export declare function newestInput(root: string): { path: string; mtimeMs: number } | undefined;
/** Whether the build under `root` is up to date, and why (in words). */
export declare function buildStatus(root: string): { upToDate: boolean; reason: string };
/** Records a successful build that began at `startedMs` (epoch ms). */
export declare function markBuilt(root: string, startedMs: number): void;
