// The API layer's public surface.
export { KvService } from './kv-service';
export type { KvServiceOptions, AddressBook } from './kv-service';
export { DEFAULT_LIMITS, InvalidArgumentError } from './validate';
export type { Limits } from './validate';
export { apiPackageDefinition, protoDir } from './proto';
export { AdminService } from './admin-service';
export type { AdminServiceOptions } from './admin-service';
export { PlacementService, descriptorFromMsg, descriptorToMsg } from './placement-service';
export type { PlacementServiceOptions, PlacementMethodName } from './placement-service';
