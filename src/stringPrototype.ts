/**
 * ioredis 6 defines `class VerbatimString extends String` (its RESP3 decoder), and setting up a
 * class whose prototype inherits from String.prototype leaves String.prototype in V8's dictionary
 * mode. V8 makes a prototype fast again only on an inline-cache miss whose receiver is an object
 * (JSObject::MakePrototypesFast), and a string method is almost always called on a primitive
 * string, so it never did: from then on every `s.charCodeAt`, `s.startsWith`, `s.slice`, … in
 * optimised code was a call of the generic load IC and a dictionary lookup (~130 instructions a
 * load, callgrind: three quarters of what parseLogfmt cost a line, a fifth of the syslog path's
 * kept lines). One property store on a String wrapper object is such a miss: String.prototype is
 * fast again, for every module of the process. Importing ioredis here first makes sure its class
 * is already defined when the store runs; a worker thread (its own isolate) runs this module too.
 * Nothing observable changes: the wrapper is thrown away.
 */
import 'ioredis';

(new String('') as unknown as { mallet: number }).mallet = 0;
