/**
 * What mallet changes in bull-board's page so that it works offline and behind a strict policy,
 * and tells nobody that an operator opened it. bull-board 9's page template links a Google Fonts
 * stylesheet; its CSS falls back to system fonts (`system-ui, …, sans-serif`) without it. Its UI
 * picks its language from the browser (German labels in a German browser): pinned to en-US here,
 * the labels the README and the docs describe.
 */

/** The UI language, whatever the browser's (bull-board's `uiConfig.locale.lng`). */
export const DASHBOARD_LOCALE = 'en-US';

/**
 * Sent with every dashboard response: the page may load only from this host. bull-board needs
 * inline styles (its loading screen, React style attributes) and data: images; its config is an
 * inline JSON block, which is not a script and needs no allowance.
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

// A `<link>` to another host in bull-board's own template (the Google Fonts stylesheet). Only
// ever applied to that template's output, never to data from a request or a log line.
const OFF_HOST_LINK = /<link\b[^>]*\bhref="(?:https?:)?\/\/[^"]*"[^>]*>\s*/gi;

/** bull-board's page without its links to other hosts. */
export function withoutOffHostLinks(html: string): string {
  return html.replace(OFF_HOST_LINK, '');
}
