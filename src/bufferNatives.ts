/**
 * Buffer's natives, taken once and called with `.call(buf, …)` on the hot scans (frames, lines,
 * memory samples). In optimised code a `buf.indexOf` or `buf.compare` load was left to V8's
 * generic load IC (LoadICTrampoline in callgrind: ~75 instructions a line on the frame scan,
 * ~145 a call on a memory sample's field reads; the cause was not found), more than the native
 * search it leads to. An imported binding keeps that gain (measured with callgrind).
 */
export const bufIndexOf = Buffer.prototype.indexOf;
export const bufCompare = Buffer.prototype.compare;
