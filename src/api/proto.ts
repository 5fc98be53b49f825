// Loads the public protos (proto/rangekv/v1) for the API services. The proto directory is found
// by walking up from this file, so it works from src/ (ts-jest) and from dist/src (built).

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export function protoDir(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(join(dir, 'proto', 'rangekv', 'v1', 'kv.proto'))) return join(dir, 'proto');
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find proto/rangekv/v1/kv.proto above ${__dirname}`);
    dir = parent;
  }
}

export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: Number,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

let cached: protoLoader.PackageDefinition | undefined;

/** The package definition of the KV and Admin services. */
export function apiPackageDefinition(): protoLoader.PackageDefinition {
  cached ??= protoLoader.loadSync(['rangekv/v1/kv.proto', 'rangekv/v1/admin.proto'], {
    ...PROTO_LOADER_OPTIONS,
    includeDirs: [protoDir()],
  });
  return cached;
}

export function serviceDefinition(name: 'rangekv.v1.KV' | 'rangekv.v1.Admin'): grpc.ServiceDefinition {
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
export function tolerantServiceDefinition(name: 'rangekv.v1.KV' | 'rangekv.v1.Admin'): grpc.ServiceDefinition {
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
