// glossy ships no types; only its parser is used (the differential test and the parser bench).
declare module 'glossy' {
  const glossy: { Parse: { parse(message: string | Buffer): Record<string, unknown> } };
  export default glossy;
}
