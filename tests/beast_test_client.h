// Blocking Beast HTTP and WebSocket clients for tests that drive a real server in process.
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <string>
#include <string_view>

namespace genledger::server {
namespace beast_test {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;
using Response = http::response<http::string_body>;

constexpr const char* kAdmin = "Bearer admin-token-0123456789";
constexpr const char* kGate = "Bearer gate-token-0123456789";
constexpr const char* kRead = "Bearer read-token-0123456789";

inline void SetRecvTimeout(int fd, int seconds) {
  timeval tv{seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// A blocking keep-alive HTTP client.
class Client {
 public:
  explicit Client(uint16_t port) : stream_(ioc_) {
    stream_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    SetRecvTimeout(stream_.socket().native_handle(), 10);
  }
  Response Do(http::verb method, std::string target, std::string body = "",
              const char* authz = kAdmin, bool* closed = nullptr) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (authz) req.set(http::field::authorization, authz);
    if (!origin_.empty()) req.set(http::field::origin, origin_);
    if (!body.empty() || method == http::verb::post || method == http::verb::put) {
      req.set(http::field::content_type, "application/json");
      req.body() = std::move(body);
      req.prepare_payload();
    }
    http::write(stream_, req);
    Response res;
    beast::error_code ec;
    http::read(stream_, buf_, res, ec);
    EXPECT_FALSE(ec) << ec.message();
    if (closed) *closed = !res.keep_alive();
    return res;
  }
  // Sends raw bytes, reads one response (or fails).
  Response Raw(std::string_view bytes, beast::error_code& ec) {
    net::write(stream_.socket(), net::buffer(bytes), ec);
    Response res;
    if (!ec) http::read(stream_, buf_, res, ec);
    return res;
  }
  // True when the server has closed the connection (read gets EOF/reset).
  bool ServerClosed() {
    char c;
    beast::error_code ec;
    stream_.socket().read_some(net::buffer(&c, 1), ec);
    return ec == net::error::eof || ec == net::error::connection_reset;
  }
  beast::tcp_stream& stream() { return stream_; }
  // Sends `Origin: <origin>` with every later request (empty: none).
  void SetOrigin(std::string origin) { origin_ = std::move(origin); }

 private:
  net::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
  std::string origin_;
};

class WsClient {
 public:
  WsClient(uint16_t port, const char* authz, beast::error_code& ec, int* status = nullptr,
           std::string origin = "")
      : ws_(ioc_) {
    beast::get_lowest_layer(ws_).connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    SetRecvTimeout(beast::get_lowest_layer(ws_).socket().native_handle(), 10);
    std::string a = authz ? authz : "";
    ws_.set_option(websocket::stream_base::decorator([a, origin](websocket::request_type& req) {
      if (!a.empty()) req.set(http::field::authorization, a);
      if (!origin.empty()) req.set(http::field::origin, origin);
    }));
    websocket::response_type res;
    ws_.handshake(res, "127.0.0.1", "/v1/ws", ec);
    if (status) *status = int(res.result_int());
  }
  void Send(std::string_view text) {
    ws_.text(true);
    ws_.write(net::buffer(text));
  }
  std::string Recv(beast::error_code& ec) {
    beast::flat_buffer b;
    ws_.read(b, ec);
    return beast::buffers_to_string(b.data());
  }
  json::value RecvJson() {
    beast::error_code ec;
    std::string s = Recv(ec);
    EXPECT_FALSE(ec) << ec.message();
    return json::parse(s);
  }
  websocket::stream<beast::tcp_stream>& ws() { return ws_; }
  net::io_context& ioc() { return ioc_; }

 private:
  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_;
};

}  // namespace beast_test
}  // namespace genledger::server
