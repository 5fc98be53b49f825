// The public protos are the contract for clients in any language: they must compile with protoc,
// as they are. This test needs protoc (Debian/Ubuntu: `apt-get install -y protobuf-compiler`); it
// FAILS when protoc is missing, in CI and elsewhere, rather than skipping: a skipped check would
// let a broken contract through unnoticed.

import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './process-cluster';

test('proto/rangekv/v1/*.proto compile with protoc', () => {
  const version = spawnSync('protoc', ['--version'], { encoding: 'utf8' });
  if (version.error) {
    throw new Error(
      `protoc is not installed (${(version.error as NodeJS.ErrnoException).code}${process.env.CI === 'true' ? ', and CI=true' : ''}): ` +
        'install it (apt-get install -y protobuf-compiler) so that the protos can be checked',
    );
  }
  const files = readdirSync(join(REPO, 'proto', 'rangekv', 'v1'))
    .filter((f) => f.endsWith('.proto'))
    .sort()
    .map((f) => `proto/rangekv/v1/${f}`);
  expect(files).toEqual(expect.arrayContaining(['proto/rangekv/v1/kv.proto', 'proto/rangekv/v1/admin.proto']));
  const r = spawnSync('protoc', ['--proto_path=proto', '--descriptor_set_out=/dev/null', ...files], { cwd: REPO, encoding: 'utf8' });
  // Compiling is the contract; warnings (stderr) are shown when it fails, but do not fail it.
  expect({ protoc: version.stdout.trim(), status: r.status, stderr: r.stderr }).toEqual({ protoc: version.stdout.trim(), status: 0, stderr: expect.any(String) });
});
