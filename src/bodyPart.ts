/**
 * One part of a drain body's single Redis call (src/server/bodyScript.ts): what the rules, the
 * observers and the firings' admission hand the pipeline to run in the body's round trip. Its own
 * file, outside src/server, so that those layers name the contract without importing the server.
 */
export type BodyPartName = 'budget' | 'predict' | 'lives' | 'threshold' | 'rejection' | 'dynos' | 'life' | 'admit';

export interface BodyPart {
  readonly name: BodyPartName;
  readonly keys: readonly string[];
  readonly args: readonly (string | number)[];
  /**
   * A threshold vote's target in the body's budget part: 1-based index into the budget's
   * targets; the vote is cast only when the budget admitted it (0: no budget).
   */
  readonly gate?: number;
  /**
   * A threshold vote of a predict rule's sample: the 1-based index of the body's part that
   * predicted it; the vote is cast only when that answer is 'reaches' (0: not a prediction).
   */
  readonly predicted?: number;
  /**
   * A threshold vote's judgement in the body's `lives` part (1-based, graceScript.ts): its grace
   * spell and window start (ARGV[15], ARGV[16]) are taken from that reply (0: none).
   */
  readonly life?: number;
}
