/**
 * Errors with a stable machine-readable code. The HTTP layer maps `httpStatus` and serializes
 * `{code, message}`; the message always says what to do next.
 */
export class HearthError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly httpStatus = 400,
  ) {
    super(message);
    this.name = 'HearthError';
  }
}

export const badRequest = (message: string) => new HearthError('invalid_argument', message, 400);
export const notFound = (message: string) => new HearthError('not_found', message, 404);
export const conflict = (message: string) => new HearthError('failed_precondition', message, 409);
