// One webhook POST over plain TCP or TLS (Beast's ssl_stream over OpenSSL), asynchronous, on the
// engine's io_context. One connection per request: receivers are few (<= 32 webhooks) and the
// per-stream order forbids pipelining anyway; a keep-alive pool is a later optimisation.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "genledger/status.h"
#include "webhook/config.h"

namespace genledger::webhook {

struct PostOutcome {
  unsigned status = 0;   // the HTTP status; 0 when no response was read (error says why)
  std::string error;     // empty on a response (any status)
};

struct PostRequest {
  ParsedUrl url;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Host, Content-Type, User-Agent
};

// The TLS client context: peer verification on, the system's CA store, or only `ca_file` (PEM)
// when given (a private CA). Errors: kInvalidArgument naming the file OpenSSL could not load.
Result<std::shared_ptr<boost::asio::ssl::context>> MakeTlsContext(const std::string& ca_file);

// Starts the POST; `done` runs exactly once on `ioc`'s thread. Every step (resolve, connect, TLS
// handshake with certificate and host name verification, write, read) has `timeout`.
// `tls` is used for https:// URLs and must outlive the operation (hold the shared_ptr).
void AsyncPost(boost::asio::io_context& ioc, std::shared_ptr<boost::asio::ssl::context> tls, PostRequest req,
               std::chrono::milliseconds timeout, std::function<void(PostOutcome)> done);

}  // namespace genledger::webhook
