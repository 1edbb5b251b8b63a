// Errors are values: every fallible core operation returns a Status or a Result<T>.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace genledger {

// Every way an operation can fail. The wire name (CodeName) is part of the public API
// (docs/api.md; the server maps codes to HTTP statuses, src/server/protocol.h); never renumber or
// rename an existing code.
enum class Code : uint8_t {
  kOk = 0,
  kInvalidArgument,        // malformed or out-of-range input in general
  kInvalidQuantity,        // quantity/seconds/outputs missing, zero, too large, wrong kind
  kInvalidId,              // an id that is not 1-128 bytes of [A-Za-z0-9._:@-]
  kUnknownModel,           // no catalog item with that id or alias
  kModelNotAvailableInRegion,
  kUnknownWorkspace,
  kUnknownReservation,     // never existed, or expired and forgotten
  kUnknownCharge,          // never existed, or beyond the refund window
  kInsufficientGenerations,
  kUserLimitExceeded,
  kIdempotencyConflict,    // same idempotency id, different parameters
  kReservationSettled,     // commit/release of a reservation already settled
  kAlreadyRefunded,
  kCommitExceedsHold,      // commit whose actual cost is larger than what was held
  kTooManyReservations,    // the configured ceiling on open holds is reached
  kCapacityExhausted,      // a configured ceiling on workspaces/users is reached
  kUnavailable,            // the WAL has failed; no mutation can be acknowledged
  kOverloaded,
  kCorruption,             // on-disk data failed a check
  kIOError,
  kNotFound,               // generic (files, etc.)
  kInternal,               // the ledger found its own state inconsistent (a bug); nothing changed
  kUnknownGrant,           // no live grant with that number in the workspace
};

// Stable snake_case name used on the wire, e.g. "insufficient_generations".
std::string_view CodeName(Code code) noexcept;

// A success or a (code, message) failure. Cheap to copy on success; the message is only
// allocated for failures that carry one.
class [[nodiscard]] Status {
 public:
  Status() noexcept = default;
  explicit Status(Code code, std::string message = {}) : code_(code), message_(std::move(message)) {}

  static Status Ok() noexcept { return Status(); }

  bool ok() const noexcept { return code_ == Code::kOk; }
  Code code() const noexcept { return code_; }
  // The human-readable message; falls back to a generic text for the code when none was given.
  std::string_view message() const noexcept;
  // "code_name: message", for logs and test failures.
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                    // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}             // NOLINT: implicit by design
  Result(Code code, std::string message = {}) : v_(Status(code, std::move(message))) {}

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  // Requires ok().
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // Ok status when ok(), else the failure.
  Status status() const { return ok() ? Status() : std::get<1>(v_); }
  Code code() const noexcept { return ok() ? Code::kOk : std::get<1>(v_).code(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace genledger
