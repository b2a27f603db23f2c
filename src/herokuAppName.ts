/**
 * A Heroku app name: lowercase letters, digits and dashes, starting with a letter, 30 characters
 * at most. One shape for the drain URL, the alert URL, the rules file and the Platform API path,
 * so an app the rules file accepts is never refused at the drain (logplex would drop its frames
 * for good on the 404).
 */
export const HEROKU_APP_NAME = /^[a-z][a-z0-9-]{1,29}$/;
