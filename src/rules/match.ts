import type { DrainEvent } from '../ingest/DrainEvent.js';
import { parseLogfmt } from '../ingest/logfmt.js';
import type { CompiledRule } from './CompiledRule.js';
import { testCondition } from './fieldCondition.js';

/** A line a rule matched, with what its templates may read. */
export interface RuleMatch {
  readonly rule: CompiledRule;
  readonly event: DrainEvent;
  /** Named groups of the message regex (absent groups are ''). */
  readonly captures: Readonly<Record<string, string>> | undefined;
  /** The line's logfmt fields, when a condition or template of the rule reads them. */
  readonly fields: ReadonlyMap<string, string> | undefined;
}

const NO_FIELDS: ReadonlyMap<string, string> = new Map();

/**
 * Appends to `out` every rule the event matches. The cheap tests run first (APP-NAME, the PROCID
 * glob, the regex's required literal, the fields' literals), the regex only after them, and logfmt
 * is parsed only for a rule with `fields` that passed everything else. The literals are tested on
 * the line's bytes when the event offers it, so a line no rule can match is not even decoded.
 */
export function matchEvent(rules: readonly CompiledRule[], event: DrainEvent, out: RuleMatch[]): void {
  let message: string | undefined;
  let fields: ReadonlyMap<string, string> | undefined;
  // Until some rule needs the text itself, literals are looked for in the producer's bytes.
  const bytewise = event.messageIncludes !== undefined && event.messageStartsWith !== undefined;
  // Read once: they are getters over the parsed message, asked by every rule.
  const source = event.source;
  const process = event.process;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (rule.source !== undefined && source !== rule.source) continue;
    if (rule.process !== undefined && !rule.process(process)) continue;
    const lit = rule.literal;
    if (lit !== undefined) {
      const bytes = rule.literalBytes;
      if (message === undefined && bytewise && bytes !== undefined) {
        if (lit.anchored ? !event.messageStartsWith!(bytes) : !event.messageIncludes!(bytes)) continue;
      } else {
        message ??= event.message;
        if (lit.anchored ? !message.startsWith(lit.text) : !message.includes(lit.text)) continue;
      }
    }
    let captures: Record<string, string> | undefined;
    if (rule.regex !== undefined) {
      message ??= event.message;
      if (rule.captureNames.length === 0) {
        if (!rule.regex.test(message)) continue;
      } else {
        const m = rule.regex.exec(message);
        if (m === null) continue;
        captures = {};
        for (const name of rule.captureNames) captures[name] = m.groups?.[name] ?? '';
      }
    }
    const fieldLiterals = rule.fieldLiterals;
    if (fieldLiterals.length > 0) {
      let present = true;
      for (let j = 0; j < fieldLiterals.length && present; j++) {
        const bytes = rule.fieldLiteralBytes[j];
        if (message === undefined && bytewise && bytes !== undefined) present = event.messageIncludes!(bytes);
        else present = (message ??= event.message).includes(fieldLiterals[j]!);
      }
      if (!present) continue;
    }
    if (rule.usesFields) {
      message ??= event.message;
      fields ??= message.includes('=') ? parseLogfmt(message) : NO_FIELDS;
      let ok = true;
      for (let j = 0; j < rule.fields.length && ok; j++) {
        const [key, cond] = rule.fields[j]!;
        ok = testCondition(cond, key, fields);
      }
      if (!ok) continue;
    }
    out.push({ rule, event, captures, fields: rule.usesFields ? fields : undefined });
  }
}
