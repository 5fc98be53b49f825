// The transport layer's public surface.
export type { Transport, TransportHandler, RangeMessage } from './transport';
export { LocalNetwork, LocalTransport } from './local-transport';
