// Webhook request signing (docs/webhooks.md, "Signature"): Stripe's scheme,
//   Genledger-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
// HMAC-SHA256 comes from OpenSSL (EVP_MAC), not a hand-written SHA-256.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace genledger::webhook {

// Lower-case hex of HMAC-SHA256(key, message) (64 characters). Never fails for valid inputs;
// an OpenSSL failure (out of memory) returns an empty string, which no receiver accepts.
std::string HmacSha256Hex(std::string_view key, std::string_view message);

// The value of the Genledger-Signature header for `body` signed at `unix_seconds`.
std::string SignatureHeader(std::string_view secret, uint64_t unix_seconds, std::string_view body);

}  // namespace genledger::webhook
