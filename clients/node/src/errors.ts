// Error classes: one per stable error code of the API (docs/api.md, "Errors"), all subclasses of
// GenledgerError, so callers can `catch (e) { if (e instanceof InsufficientGenerationsError) ... }`
// or switch on `e.code`. A code this client does not know yet (a newer server) is a plain
// GenledgerError carrying that code.

/** The error object inside an error body: `{"error":{"code","message",...}}`. */
export interface ErrorBody {
  code: string;
  message: string;
  cost?: number;
  remaining?: number | null;
  [extra: string]: unknown;
}

/** Base class of every error this client throws about an answer or a missing one. */
export class GenledgerError extends Error {
  /** The API's stable error code (`insufficient_generations`, `unavailable`, ...). */
  readonly code: string;
  /** The HTTP status (or the op's `status` inside a WebSocket frame); 0 when no answer came. */
  readonly status: number;
  /** The whole error object as the server sent it (empty for client-side errors). */
  readonly body: ErrorBody;

  constructor(code: string, status: number, message: string, body?: ErrorBody, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.body = body ?? { code, message };
  }
}

// 400
export class BadJsonError extends GenledgerError {}
export class BadRequestError extends GenledgerError {}
export class InvalidArgumentError extends GenledgerError {}
export class InvalidQuantityError extends GenledgerError {}
export class InvalidIdError extends GenledgerError {}
export class UnknownModelError extends GenledgerError {}
export class CommitExceedsHoldError extends GenledgerError {}
// 401
export class UnauthorizedError extends GenledgerError {}

/** 402: the cost did not fit. `cost` is what was asked, `remaining` what the workspace has left. */
export class PaymentRequiredError extends GenledgerError {
  readonly cost: number | undefined;
  readonly remaining: number | null | undefined;
  constructor(code: string, status: number, message: string, body?: ErrorBody, options?: { cause?: unknown }) {
    super(code, status, message, body, options);
    this.cost = body?.cost;
    this.remaining = body?.remaining;
  }
}
export class InsufficientGenerationsError extends PaymentRequiredError {}
export class UserLimitExceededError extends PaymentRequiredError {}
// 403
export class ForbiddenError extends GenledgerError {}
export class ForbiddenOriginError extends GenledgerError {}
export class ModelNotAvailableInRegionError extends GenledgerError {}
// 404
export class NotFoundError extends GenledgerError {}
export class UnknownWorkspaceError extends GenledgerError {}
export class UnknownReservationError extends GenledgerError {}
export class UnknownChargeError extends GenledgerError {}
export class UnknownGrantError extends GenledgerError {}
// 405
export class MethodNotAllowedError extends GenledgerError {}
// 409
export class IdempotencyConflictError extends GenledgerError {}
export class ReservationSettledError extends GenledgerError {}
export class AlreadyRefundedError extends GenledgerError {}
// 413
export class TooLargeError extends GenledgerError {}
// 429
export class TooManyReservationsError extends GenledgerError {}
export class CapacityExhaustedError extends GenledgerError {}
// 503
export class OverloadedError extends GenledgerError {}
/**
 * genledger did not give an answer that settles the call: it answered `503 unavailable`, or it
 * could not be reached or did not answer in time (then `status` is 0 and `cause` says why).
 * The outcome of a change is unknown: retry with the same id.
 */
export class UnavailableError extends GenledgerError {}
// 500
export class IoError extends GenledgerError {}
export class CorruptionError extends GenledgerError {}
export class InternalError extends GenledgerError {}

type ErrorClass = new (code: string, status: number, message: string, body?: ErrorBody,
                       options?: { cause?: unknown }) => GenledgerError;

/** Error code -> class. Exported so callers can list the codes this client knows. */
export const ERROR_CLASSES: Readonly<Record<string, ErrorClass>> = Object.freeze({
  bad_json: BadJsonError,
  bad_request: BadRequestError,
  invalid_argument: InvalidArgumentError,
  invalid_quantity: InvalidQuantityError,
  invalid_id: InvalidIdError,
  unknown_model: UnknownModelError,
  commit_exceeds_hold: CommitExceedsHoldError,
  unauthorized: UnauthorizedError,
  insufficient_generations: InsufficientGenerationsError,
  user_limit_exceeded: UserLimitExceededError,
  forbidden: ForbiddenError,
  forbidden_origin: ForbiddenOriginError,
  model_not_available_in_region: ModelNotAvailableInRegionError,
  not_found: NotFoundError,
  unknown_workspace: UnknownWorkspaceError,
  unknown_reservation: UnknownReservationError,
  unknown_charge: UnknownChargeError,
  unknown_grant: UnknownGrantError,
  method_not_allowed: MethodNotAllowedError,
  idempotency_conflict: IdempotencyConflictError,
  reservation_settled: ReservationSettledError,
  already_refunded: AlreadyRefundedError,
  too_large: TooLargeError,
  too_many_reservations: TooManyReservationsError,
  capacity_exhausted: CapacityExhaustedError,
  overloaded: OverloadedError,
  unavailable: UnavailableError,
  io_error: IoError,
  corruption: CorruptionError,
  internal: InternalError,
});

/** Builds the error for an error answer: `status` and the body's `error` object (if any). */
export function errorFromAnswer(status: number, body: unknown): GenledgerError {
  const err = (body as { error?: ErrorBody } | null)?.error;
  if (err && typeof err.code === "string") {
    const cls = ERROR_CLASSES[err.code];
    const message = typeof err.message === "string" ? err.message : err.code;
    if (cls) return new cls(err.code, status, message, err);
    // 402 bodies always carry cost/remaining, whatever code a newer server uses.
    if (status === 402) return new PaymentRequiredError(err.code, status, message, err);
    return new GenledgerError(err.code, status, message, err);
  }
  // Not an error body (a proxy's page, an empty 5xx): name it by status.
  const code = status === 503 ? "unavailable" : status === 404 ? "not_found" : "http_" + status;
  const cls = ERROR_CLASSES[code] ?? GenledgerError;
  return new cls(code, status, `HTTP ${status} without a genledger error body`);
}

/** The error for "no answer": connection refused or reset, timeout, closed WebSocket. */
export function unreachable(message: string, cause?: unknown): UnavailableError {
  return new UnavailableError("unavailable", 0, message, undefined, { cause });
}
