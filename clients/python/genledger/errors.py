"""Exceptions: one class per API error code (docs/api.md, "Errors"), all subclasses of Error.

Every exception carries the server's ``code`` (a stable string), the HTTP ``status``, the
human ``message`` and the whole error object in ``raw``. Refusals for the allowance (402) also
carry ``cost`` and ``remaining``. A code this version does not know maps to ``Error`` itself, so
``except genledger.Error`` always works and a newer server never breaks an older client.
"""


class Error(Exception):
    """Base class of every error the client raises for an answer (or a missing one)."""

    code = None
    status = None

    def __init__(self, message="", code=None, status=..., raw=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not ...:
            self.status = status  # None: no HTTP answer at all (connection failure, timeout)
        self.raw = raw if raw is not None else {}
        self.cost = self.raw.get("cost")
        self.remaining = self.raw.get("remaining")

    def __str__(self):
        return "%s (%s %s)" % (self.message, self.status, self.code)


# --- 400 ----------------------------------------------------------------------------------
class BadRequest(Error):
    """A request the server could not take as it is (every 400)."""
    status = 400
    code = "bad_request"


class BadJson(BadRequest):
    code = "bad_json"


class InvalidArgument(BadRequest):
    code = "invalid_argument"


class InvalidQuantity(BadRequest):
    code = "invalid_quantity"


class InvalidId(BadRequest):
    code = "invalid_id"


class UnknownModel(BadRequest):
    code = "unknown_model"


class CommitExceedsHold(BadRequest):
    code = "commit_exceeds_hold"


# --- 401 / 403 ----------------------------------------------------------------------------
class Unauthorized(Error):
    status = 401
    code = "unauthorized"


class Forbidden(Error):
    status = 403
    code = "forbidden"


class ForbiddenOrigin(Forbidden):
    code = "forbidden_origin"


class ModelNotAvailableInRegion(Error):
    status = 403
    code = "model_not_available_in_region"


# --- 402: refused for the allowance; cost and remaining say by how much --------------------
class PaymentRequired(Error):
    """The workspace or the user cannot afford it; nothing was debited."""
    status = 402


class InsufficientGenerations(PaymentRequired):
    code = "insufficient_generations"


class UserLimitExceeded(PaymentRequired):
    code = "user_limit_exceeded"


# --- 404 / 405 ----------------------------------------------------------------------------
class NotFound(Error):
    status = 404
    code = "not_found"


class UnknownWorkspace(NotFound):
    code = "unknown_workspace"


class UnknownReservation(NotFound):
    code = "unknown_reservation"


class UnknownCharge(NotFound):
    code = "unknown_charge"


class UnknownGrant(NotFound):
    code = "unknown_grant"


class UnknownToken(NotFound):
    code = "unknown_token"


class UnknownWebhook(NotFound):
    code = "unknown_webhook"


class UnknownPeriod(NotFound):
    code = "unknown_period"


class MethodNotAllowed(Error):
    status = 405
    code = "method_not_allowed"


# --- 409 ----------------------------------------------------------------------------------
class Conflict(Error):
    status = 409
    code = "conflict"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class ReservationSettled(Conflict):
    code = "reservation_settled"


class AlreadyRefunded(Conflict):
    code = "already_refunded"


class TooManyTokens(Conflict):
    code = "too_many_tokens"


# --- 413 / 429 ----------------------------------------------------------------------------
class TooLarge(Error):
    status = 413
    code = "too_large"


class TooManyReservations(Error):
    status = 429
    code = "too_many_reservations"


class CapacityExhausted(Error):
    status = 429
    code = "capacity_exhausted"


class TooManySubscriptions(Error):
    status = 429
    code = "too_many_subscriptions"


# --- 503: also raised by the client itself when the server cannot be reached ---------------
class Unavailable(Error):
    """No usable answer: the server is unreachable, timed out, or answered 503 after every
    retry. For a change, the outcome is unknown: retry with the same id."""
    status = 503
    code = "unavailable"


class Overloaded(Unavailable):
    code = "overloaded"


class TooManySubscribers(Unavailable):
    code = "too_many_subscribers"


# --- 500 ----------------------------------------------------------------------------------
class ServerError(Error):
    status = 500


class IoError(ServerError):
    code = "io_error"


class Corruption(ServerError):
    code = "corruption"


class Internal(ServerError):
    code = "internal"


def _leaf_classes():
    out = {}
    stack = [Error]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            stack.append(sub)
            if "code" in sub.__dict__:
                out[sub.code] = sub
    return out


CODES = _leaf_classes()


def from_body(status, body):
    """The exception for an error answer ``{"error":{"code","message",...}}`` (or any body)."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        err = {"code": None, "message": "HTTP %s without an error object" % status}
    code = err.get("code")
    cls = CODES.get(code, Error)
    return cls(err.get("message") or "", code=code, status=status, raw=err)
