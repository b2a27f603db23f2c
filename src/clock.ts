/** Milliseconds since the epoch. Injected into windows, cooldowns and limits so tests and
 * `mallet test` step simulated time instead of sleeping. */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();
