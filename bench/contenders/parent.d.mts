/**
 * Bench helper processes end when the bench does, even if it was killed
 * without a chance to clean up: each polls its parent (`--parent <pid>`, else
 * the process that started it) once a second and exits when it is gone.
 * One implementation (parent.mjs) for the Bun and the Node contenders.
 */
export declare const watchParent: (stop: () => void) => void
/** The value after `--<name>` on the command line, or `fallback`. */
export declare const arg: (name: string, fallback: string) => string
