// The transport layer's public surface.
export type { Transport, TransportHandler, RangeMessage, SnapshotSink } from './transport';
export { LocalNetwork, LocalTransport } from './local-transport';
export { GrpcTransport, raftServerOptions, maxWireMessageBytes } from './grpc-transport';
export type { GrpcTransportOptions } from './grpc-transport';
export {
  TransportError,
  TransportConfigError,
  RaftCodecError,
  SnapshotTooLargeError,
  ProtoFilesNotFoundError,
  TransportStateError,
} from './errors';
export { findProtoRoot, loadPackageDefinition, GRPC_COMMON_OPTIONS, PROTO_LOADER_OPTIONS, RANGEKV_PROTO_FILES } from './proto';
export { TransportFailpoints, FailpointConfigError, FAILPOINT_MAX_DELAY_MS } from './failpoint';
export type { RaftSendFailpoint, TransportFailpointStatus, FailpointPlan } from './failpoint';
