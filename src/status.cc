#include "genledger/status.h"

namespace genledger {

std::string_view CodeName(Code code) noexcept {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid_argument";
    case Code::kInvalidQuantity: return "invalid_quantity";
    case Code::kInvalidId: return "invalid_id";
    case Code::kUnknownModel: return "unknown_model";
    case Code::kModelNotAvailableInRegion: return "model_not_available_in_region";
    case Code::kUnknownWorkspace: return "unknown_workspace";
    case Code::kUnknownReservation: return "unknown_reservation";
    case Code::kUnknownCharge: return "unknown_charge";
    case Code::kInsufficientGenerations: return "insufficient_generations";
    case Code::kUserLimitExceeded: return "user_limit_exceeded";
    case Code::kIdempotencyConflict: return "idempotency_conflict";
    case Code::kReservationSettled: return "reservation_settled";
    case Code::kAlreadyRefunded: return "already_refunded";
    case Code::kCommitExceedsHold: return "commit_exceeds_hold";
    case Code::kTooManyReservations: return "too_many_reservations";
    case Code::kCapacityExhausted: return "capacity_exhausted";
    case Code::kUnavailable: return "unavailable";
    case Code::kOverloaded: return "overloaded";
    case Code::kCorruption: return "corruption";
    case Code::kIOError: return "io_error";
    case Code::kNotFound: return "not_found";
    case Code::kInternal: return "internal";
    case Code::kUnknownGrant: return "unknown_grant";
  }
  return "unknown_error";
}

std::string_view Status::message() const noexcept {
  if (!message_.empty()) return message_;
  switch (code_) {
    case Code::kOk: return "ok";
    case Code::kInsufficientGenerations: return "the workspace has not enough generations left";
    case Code::kUserLimitExceeded: return "the user's generation limit would be exceeded";
    case Code::kUnknownWorkspace: return "no such workspace";
    case Code::kUnknownReservation: return "no such reservation (never made, or expired)";
    case Code::kUnknownCharge: return "no such charge (never made, or outside the refund window)";
    case Code::kReservationSettled: return "the reservation was already committed, released or expired";
    case Code::kAlreadyRefunded: return "the charge was already refunded";
    case Code::kIdempotencyConflict: return "the idempotency id was used before with other parameters";
    case Code::kModelNotAvailableInRegion: return "the model is not available in the workspace's region";
    case Code::kUnavailable: return "the write-ahead log has failed; no change can be acknowledged";
    case Code::kInternal: return "internal error: the ledger found its state inconsistent; nothing changed";
    default: return CodeName(code_);
  }
}

std::string Status::ToString() const {
  std::string s(CodeName(code_));
  s += ": ";
  s += message();
  return s;
}

}  // namespace genledger
