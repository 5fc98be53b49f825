// Loads the public protos (proto/rangekv/v1) for the API services, with the transport's loader
// (src/transport/proto.ts finds proto/ from src/ and from dist/src alike).

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_LOADER_OPTIONS, findProtoRoot } from '../transport/proto';

export { GRPC_COMMON_OPTIONS } from '../transport/proto';

/** The repository's proto/ directory. */
export function protoDir(): string {
  return findProtoRoot();
}

/** The transport's loader options, with enums as numbers (the API validates enum values itself). */
const API_LOADER_OPTIONS: protoLoader.Options = { ...PROTO_LOADER_OPTIONS, enums: Number };

let cached: protoLoader.PackageDefinition | undefined;

export type ApiServiceName = 'rangekv.v1.KV' | 'rangekv.v1.Admin' | 'rangekv.v1.Placement';

/** The package definition of the KV, Admin and Placement services. */
export function apiPackageDefinition(): protoLoader.PackageDefinition {
  cached ??= protoLoader.loadSync(['rangekv/v1/kv.proto', 'rangekv/v1/admin.proto', 'rangekv/v1/placement.proto'], {
    ...API_LOADER_OPTIONS,
    includeDirs: [protoDir()],
  });
  return cached;
}

export function serviceDefinition(name: ApiServiceName): grpc.ServiceDefinition {
  const def = apiPackageDefinition()[name];
  if (!def || 'format' in def) throw new Error(`service ${name} not found in the protos`);
  return def as grpc.ServiceDefinition;
}

/** A request that could not be decoded: handlers answer INVALID_ARGUMENT instead of INTERNAL. */
export interface MalformedRequest {
  readonly malformed: string;
}

export function isMalformed(x: unknown): x is MalformedRequest {
  return typeof x === 'object' && x !== null && 'malformed' in x && typeof (x as MalformedRequest).malformed === 'string';
}

/**
 * The service definition with every request deserializer wrapped so malformed bytes become a
 * MalformedRequest (grpc-js would otherwise answer INTERNAL, which reads like a server bug).
 */
export function tolerantServiceDefinition(name: ApiServiceName): grpc.ServiceDefinition {
  const def = serviceDefinition(name);
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [method, m] of Object.entries(def)) {
    const md = m as grpc.MethodDefinition<unknown, unknown>;
    out[method] = {
      ...md,
      requestDeserialize: (buf: Buffer): unknown => {
        try {
          return md.requestDeserialize(buf);
        } catch (err) {
          return { malformed: `request is not a valid ${md.path} message: ${(err as Error).message}` } satisfies MalformedRequest;
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}
