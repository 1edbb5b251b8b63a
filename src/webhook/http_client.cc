#include "webhook/http_client.h"

#include <openssl/ssl.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace genledger::webhook {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

constexpr const char* kUserAgent = "genledger-webhook/" GENLEDGER_VERSION;
constexpr uint64_t kMaxResponseBodyBytes = 64 * 1024;  // receivers answer small; the body is not kept

std::string Describe(const char* step, const beast::error_code& ec) {
  if (ec == beast::error::timeout) return std::string(step) + ": timeout";
  return std::string(step) + ": " + ec.message();
}

// One operation: resolve, connect, [handshake], write, read, done. Owns itself via shared_ptr.
class PostOp : public std::enable_shared_from_this<PostOp> {
 public:
  PostOp(net::io_context& ioc, std::shared_ptr<ssl::context> tls, PostRequest req, std::chrono::milliseconds timeout,
         std::function<void(PostOutcome)> done)
      : resolver_(ioc), resolve_timer_(ioc), tls_(std::move(tls)), req_(std::move(req)), timeout_(timeout),
        done_(std::move(done)) {
    if (req_.url.tls) {
      tls_stream_.emplace(ioc, *tls_);
    } else {
      tcp_stream_.emplace(ioc);
    }
  }

  void Start() {
    auto self = shared_from_this();
    resolve_timer_.expires_after(timeout_);
    resolve_timer_.async_wait([self](beast::error_code ec) {
      if (!ec) self->resolver_.cancel();
    });
    resolver_.async_resolve(req_.url.host, std::to_string(req_.url.port),
                            [self](beast::error_code ec, tcp::resolver::results_type results) {
                              self->resolve_timer_.cancel();
                              if (ec) return self->Finish(0, ec == net::error::operation_aborted
                                                                    ? "resolve: timeout"
                                                                    : Describe("resolve", ec));
                              self->Connect(results);
                            });
  }

 private:
  beast::tcp_stream& Lowest() { return tls_stream_ ? beast::get_lowest_layer(*tls_stream_) : *tcp_stream_; }

  void Connect(const tcp::resolver::results_type& results) {
    auto self = shared_from_this();
    Lowest().expires_after(timeout_);
    Lowest().async_connect(results, [self](beast::error_code ec, const tcp::endpoint&) {
      if (ec) return self->Finish(0, Describe("connect", ec));
      if (self->tls_stream_) return self->Handshake();
      self->Write();
    });
  }

  void Handshake() {
    const std::string& host = req_.url.host;
    beast::error_code addr_ec;
    net::ip::make_address(host, addr_ec);
    // SNI only for names (RFC 6066 forbids IP literals); verification covers both (IP SANs).
    if (addr_ec && !SSL_set_tlsext_host_name(tls_stream_->native_handle(), host.c_str())) {
      return Finish(0, "tls: cannot set SNI");
    }
    tls_stream_->set_verify_mode(ssl::verify_peer);
    tls_stream_->set_verify_callback(ssl::host_name_verification(host));
    auto self = shared_from_this();
    Lowest().expires_after(timeout_);
    tls_stream_->async_handshake(ssl::stream_base::client, [self](beast::error_code ec) {
      if (ec) return self->Finish(0, Describe("tls handshake", ec));
      self->Write();
    });
  }

  void Write() {
    request_.method(http::verb::post);
    request_.target(req_.url.target);
    request_.version(11);
    const bool default_port = req_.url.port == (req_.url.tls ? 443 : 80);
    std::string host = req_.url.host.find(':') != std::string::npos ? "[" + req_.url.host + "]" : req_.url.host;
    if (!default_port) host += ":" + std::to_string(req_.url.port);
    request_.set(http::field::host, host);
    request_.set(http::field::user_agent, kUserAgent);
    request_.set(http::field::content_type, "application/json");
    request_.set(http::field::connection, "close");
    for (auto& [k, v] : req_.headers) request_.set(k, v);
    request_.body() = std::move(req_.body);
    request_.prepare_payload();
    auto self = shared_from_this();
    Lowest().expires_after(timeout_);
    auto on_write = [self](beast::error_code ec, size_t) {
      if (ec) return self->Finish(0, Describe("write", ec));
      self->Read();
    };
    if (tls_stream_) {
      http::async_write(*tls_stream_, request_, on_write);
    } else {
      http::async_write(*tcp_stream_, request_, on_write);
    }
  }

  void Read() {
    parser_.body_limit(kMaxResponseBodyBytes);
    auto self = shared_from_this();
    Lowest().expires_after(timeout_);
    auto on_read = [self](beast::error_code ec, size_t) {
      if (ec) return self->Finish(0, Describe("read", ec));
      self->Finish(self->parser_.get().result_int(), {});
    };
    if (tls_stream_) {
      http::async_read(*tls_stream_, buffer_, parser_, on_read);
    } else {
      http::async_read(*tcp_stream_, buffer_, parser_, on_read);
    }
  }

  void Finish(unsigned status, std::string error) {
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().close();
    auto done = std::move(done_);
    if (done) done(PostOutcome{status, std::move(error)});
  }

  tcp::resolver resolver_;
  net::steady_timer resolve_timer_;
  std::shared_ptr<ssl::context> tls_;
  PostRequest req_;
  std::chrono::milliseconds timeout_;
  std::function<void(PostOutcome)> done_;
  std::optional<beast::tcp_stream> tcp_stream_;
  std::optional<ssl::stream<beast::tcp_stream>> tls_stream_;
  http::request<http::string_body> request_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
};

}  // namespace

Result<std::shared_ptr<ssl::context>> MakeTlsContext(const std::string& ca_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  boost::system::error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                   ec);
  ctx->set_verify_mode(ssl::verify_peer, ec);
  if (ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) return Status(Code::kInvalidArgument, "webhook TLS: cannot load the system CA store: " + ec.message());
  } else {
    ctx->load_verify_file(ca_file, ec);
    if (ec) return Status(Code::kInvalidArgument, "--webhook-ca " + ca_file + ": " + ec.message());
  }
  return ctx;
}

void AsyncPost(net::io_context& ioc, std::shared_ptr<ssl::context> tls, PostRequest req,
               std::chrono::milliseconds timeout, std::function<void(PostOutcome)> done) {
  if (req.url.tls && !tls) {
    return net::post(ioc, [done = std::move(done)] { done(PostOutcome{0, "tls: no TLS context"}); });
  }
  std::make_shared<PostOp>(ioc, std::move(tls), std::move(req), timeout, std::move(done))->Start();
}

}  // namespace genledger::webhook
