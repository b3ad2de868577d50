/**
 * gRPC status errors for handlers, and the mapping from blobstore errors to gRPC codes.
 */
import { Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { BlobStoreError } from '@hearth/blobstore';

export class GrpcError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'GrpcError';
  }
}

export const invalidArgument = (message: string) => new GrpcError(status.INVALID_ARGUMENT, message);
export const notFound = (message: string) => new GrpcError(status.NOT_FOUND, message);
export const outOfRange = (message: string) => new GrpcError(status.OUT_OF_RANGE, message);

/** The gRPC code for any error thrown inside a handler. */
export function grpcCodeOf(err: unknown): status {
  if (err instanceof GrpcError) return err.code;
  if (err instanceof BlobStoreError) {
    switch (err.code) {
      case 'invalid_digest':
      case 'digest_mismatch':
        return status.INVALID_ARGUMENT;
      case 'out_of_range':
        return status.OUT_OF_RANGE;
      case 'blob_too_large':
        return status.RESOURCE_EXHAUSTED;
    }
  }
  if ((err as Error | null)?.name === 'AbortError') return status.CANCELLED;
  return status.INTERNAL;
}

export function toServiceError(err: unknown): Partial<ServiceError> {
  const code = grpcCodeOf(err);
  const details = err instanceof Error ? err.message : String(err);
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() });
}
