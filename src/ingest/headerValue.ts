/** A request header as one string: the first of repeated ones, '' when absent. */
export function headerValue(v: string | string[] | undefined): string {
  return (Array.isArray(v) ? v[0] : v) ?? '';
}
