/**
 * The pub/sub channel that wakes the consumers of one stop key: a fixed prefix and the key itself
 * (`mallet:wake:puma::stop::web.1`). mallet publishes on it right after writing the key; the Puma
 * plugin and the agent subscribe to the channel of the key they poll. Derived from the key alone,
 * which mallet has already checked against `^[A-Za-z0-9:._-]{1,200}$` and whose dyno part is a
 * Cedar or Fir dyno name, so a log line can pick no other channel than a stop key's; the prefix
 * keeps it clear of the app's own channels. The message carries nothing: a woken consumer reads
 * the key again and applies the same rules as its poll.
 */
export const WAKE_CHANNEL_PREFIX = 'mallet:wake:';
export const WAKE_MESSAGE = 'wake';

export function wakeChannel(stopKey: string): string {
  return WAKE_CHANNEL_PREFIX + stopKey;
}
