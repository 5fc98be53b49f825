// The client's Multiplex codec (src/client/mux-codec.ts) against proto-loader's generic codec for
// the same method: requests encode to the same bytes, responses decode to the same objects —
// for the shapes it reads directly (gets and puts) and for those it hands to toObject.
import { apiPackageDefinition } from '../../src/api/proto';
import { decodeMuxResponse, encodeMuxRequest } from '../../src/client/mux-codec';

const method = (apiPackageDefinition()['rangekv.v1.KV'] as unknown as Record<string, {
  requestSerialize(v: object): Buffer;
  responseSerialize(v: object): Buffer;
  responseDeserialize(b: Buffer): object;
}>).Multiplex!;

const route = { rangeId: 7, epoch: { version: 3, confVersion: 5 } };
const header = { rangeId: 7, nodeId: 2, appliedIndex: 2 ** 40 + 3, error: null };
const descriptor = {
  rangeId: 9,
  startKey: Buffer.from('m'),
  endKey: Buffer.alloc(0),
  epoch: { version: 4, confVersion: 6 },
  replicas: [
    { nodeId: 1, role: 1 },
    { nodeId: 4, role: 2 },
  ],
};

describe('Multiplex codec of the client', () => {
  it('encodes requests to the bytes proto-loader gives', () => {
    const requests = [
      { items: [] },
      { items: [{ id: 1, timeoutMs: 10_000, get: { key: Buffer.from('k'), consistency: 3, header: route } }] },
      {
        items: [
          { id: 2 ** 33 + 1, timeoutMs: 1, get: { key: Buffer.from('a'), consistency: 1, header: {} } },
          {
            id: 3,
            timeoutMs: 500,
            put: { key: Buffer.from('p'), value: Buffer.alloc(300, 7), header: { ...route, clientId: 2 ** 47 + 11, sequence: 12, answeredBelow: 10 } },
          },
          { id: 4, timeoutMs: 500, delete: { key: Buffer.from('d'), header: { ...route, clientId: 5, sequence: 13, answeredBelow: 10 } } },
          {
            id: 5,
            timeoutMs: 500,
            compareAndSwap: { key: Buffer.from('c'), expectedValue: Buffer.from('x'), newValue: Buffer.from('y'), header: { clientId: 5, sequence: 14, answeredBelow: 10 } },
          },
          { id: 6, timeoutMs: 500, compareAndSwap: { key: Buffer.from('c'), expectedAbsent: true, newValue: Buffer.from('y'), header: {} } },
          { id: 7, timeoutMs: 500, compareAndSwap: { key: Buffer.from('c'), expectedVersion: 99, newValue: Buffer.alloc(0), header: {} } },
          { id: 8, timeoutMs: 0, get: { key: Buffer.alloc(0), consistency: 0 } },
        ],
      },
    ];
    for (const r of requests) expect(encodeMuxRequest(r).equals(method.requestSerialize(r))).toBe(true);
  });

  it('decodes every kind of result to the objects proto-loader gives', () => {
    const results = [
      // Read directly:
      { id: 1, code: 0, message: '', get: { header, found: true, kv: { key: Buffer.from('k'), value: Buffer.from('v'), version: 2 ** 40 } } },
      { id: 2, code: 0, message: '', get: { header, found: false, kv: null } },
      { id: 3, code: 0, message: '', get: { header, found: true, kv: { key: Buffer.alloc(0), value: Buffer.alloc(0), version: 0 } } },
      { id: 2 ** 35, code: 0, message: '', put: { header, version: 77 } },
      // Handed to toObject:
      { id: 5, code: 0, message: '', get: { header: { ...header, error: { message: 'not leader', notLeader: { rangeId: 7, leader: { nodeId: 3, address: '127.0.0.1:1' } } } }, found: false, kv: null } },
      { id: 6, code: 0, message: '', put: { header: { ...header, error: { message: 'epoch', epochNotMatch: { current: [descriptor] } } }, version: 0 } },
      { id: 7, code: 0, message: '', get: { header: null, found: false, kv: null } },
      { id: 8, code: 0, message: '', delete: { header, deleted: true, version: 5 } },
      { id: 9, code: 0, message: '', compareAndSwap: { header, succeeded: false, current: { key: Buffer.from('c'), value: Buffer.from('z'), version: 4 } } },
      { id: 10, code: 0, message: '', batch: { header, results: [{ put: { header, version: 8 } }] } },
      { id: 11, code: 3, message: 'key: must not be empty' },
      { id: 12, code: 0, message: '', put: { header: { ...header, error: { message: 'busy', serverBusy: { reason: 'r', retryAfterMs: 5 } } }, version: 0 } },
    ];
    const wire = method.responseSerialize({ results });
    expect(decodeMuxResponse(wire)).toStrictEqual(method.responseDeserialize(wire));
    // One result at a time too (no result's decoding leans on another's).
    for (const r of results) {
      const one = method.responseSerialize({ results: [r] });
      expect(decodeMuxResponse(one)).toStrictEqual(method.responseDeserialize(one));
    }
  });
});
