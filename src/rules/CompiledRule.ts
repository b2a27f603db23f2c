import type RE2 from 're2';
import type { AppEntry, Limits } from './RuleSet.js';
import type { ProcessMatcher } from './glob.js';
import type { RegexLiteral } from './literal.js';
import type { FieldCondition } from './fieldCondition.js';
import type { Template } from './template.js';
import type { FirMapping } from './FirMapping.js';
import type { PredictCondition } from './predict.js';

/** A rule after compile: the hot path reads only these fields. */
export interface CompiledRule {
  readonly name: string;
  readonly description: string | undefined;
  /** undefined = any APP-NAME. */
  readonly source: 'heroku' | 'app' | undefined;
  readonly process: ProcessMatcher | undefined;
  readonly literal: RegexLiteral | undefined;
  /** `literal.text` as UTF-8, tested on undecoded lines; undefined when only the string test is exact. */
  readonly literalBytes: Buffer | undefined;
  /** undefined when there is no message condition or the literal alone decides it. */
  readonly regex: RE2 | undefined;
  readonly captureNames: readonly string[];
  readonly fields: readonly (readonly [string, FieldCondition])[];
  /** Substrings every line passing `fields` contains (`key=`, equality values): checked before logfmt. */
  readonly fieldLiterals: readonly string[];
  /** `fieldLiterals` as UTF-8, index for index (undefined where only the string test is exact). */
  readonly fieldLiteralBytes: readonly (Buffer | undefined)[];
  /** Conditions or templates read logfmt fields: parse them (lazily) for this rule. */
  readonly usesFields: boolean;
  readonly target: Template;
  readonly count: number;
  readonly withinMs: number;
  readonly cooldownMs: number;
  /** `predict:`: a matched line counts only when its instance's fitted line reaches the limit in time. */
  readonly predict?: PredictCondition;
  readonly dryRun: boolean;
  /** `grace:`: matches this soon after the instance's start or the app's release are not counted. */
  readonly grace?: RuleGrace;
  readonly actions: readonly ActionTemplate[];
  /** `on_failure`: run once when a step has failed for good (empty when the rule names none). */
  readonly onFailure: readonly ActionTemplate[];
}

/** 0 = that kind of grace is off. */
export interface RuleGrace {
  readonly afterStartMs: number;
  readonly afterReleaseMs: number;
}

/** An action with its templates parsed and durations in ms; rendered per firing. */
export type ActionTemplate =
  | { readonly type: 'redis-stop-key'; readonly key: Template; readonly value: Template; readonly ttlMs: number; readonly redisUrlRef?: string; readonly watch?: false }
  | { readonly type: 'sidekiq-stop'; readonly hostname: Template; readonly tag?: string; readonly namespace?: string; readonly quietTimeoutMs: number; readonly stopTimeoutMs: number; readonly redisUrlRef?: string }
  | { readonly type: 'heroku-restart'; readonly scope: 'dyno' | 'process-type'; readonly dyno: Template; readonly tokenRef?: string }
  | { readonly type: 'notify'; readonly urlRef: string; readonly text: Template };

/** The compiled, frozen rules file (extends the committed shape in RuleSet.ts). */
export interface CompiledRuleSet {
  readonly path: string;
  readonly apps: ReadonlyMap<string, AppEntry> | undefined;
  readonly limits: Limits;
  readonly rules: readonly CompiledRule[];
  /** How Fir telemetry (OTLP) maps onto events: the `fir:` section or its defaults. */
  readonly fir: FirMapping;
  appForDrainToken(token: string): string | undefined;
}
