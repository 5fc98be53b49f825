// The client library's public surface.
export { KvClient, Consistency } from './client';
export type { ClientOptions, GetResult, KeyValue, CasExpected } from './client';
export { ClientError, InvalidRequestError, UnavailableError, IndeterminateError } from './errors';
