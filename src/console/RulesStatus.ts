/** What the status page says about the rules file: where, when loaded, and a refused reload. */
export interface RulesStatus {
  readonly path: string;
  readonly fromExample: boolean;
  /** When the rules in force were loaded (start or the last good reload), ms. */
  readonly loadedAt: number;
  readonly rules: number;
  /** The last reload that was refused after the rules in force were loaded (errors as file:line:col: message). */
  readonly refused?: { readonly at: number; readonly errors: readonly string[] };
}
