import { parsePredictReply, type PredictResult } from '../../src/rules/predictScript.js';

/** A predict part's answer as the body script gives it: a 'reaches' answer in full, any other its status alone. */
export type BodyPredictAnswer = PredictResult | { readonly status: 'few' | 'below' };

/** The body script's reply to a predict part, read. */
export function bodyPredictAnswer(reply: unknown): BodyPredictAnswer {
  const r = reply as unknown[];
  return r.length === 1 ? { status: r[0] as 'few' | 'below' } : parsePredictReply(r);
}

/**
 * What the body script answers where the standalone script (or the memory mirror) answered `a`.
 * The full answers of those samples are still pinned: each is stored in the state hash, which
 * the tests compare byte for byte with the standalone script's.
 */
export function asBodyAnswer(a: PredictResult): BodyPredictAnswer {
  return a.status === 'reaches' ? a : { status: a.status };
}
