// The Transport conformance suite against the in-process LocalTransport.
import { LocalNetwork, LocalTransport, Transport } from '../../src/transport';
import { runTransportConformance } from './transport-conformance';

runTransportConformance('LocalTransport', () => {
  const net = new LocalNetwork();
  const transports: Transport[] = [];
  return {
    unknownNodeId: 99,
    async create(nodeId: number): Promise<Transport> {
      const t = new LocalTransport(net, nodeId);
      transports.push(t);
      return t;
    },
    async close(): Promise<void> {
      for (const t of transports) await t.stop();
    },
  };
});
