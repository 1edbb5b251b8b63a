// genledger-load: the two transports of a Conn (conn.h). WsConn pipelines frames of ops over
// one WebSocket (a writer and a reader coroutine: Beast allows one outstanding read and one
// outstanding write); HttpConn sends one request at a time on a keep-alive connection.
#include <algorithm>
#include <memory>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "load/conn.h"
#include "server/coalescing_stream.h"

namespace genledger::load {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using genledger::server::CoalescingStream;

constexpr auto kAwait = asio::use_awaitable;

class WsConn final : public Conn {
 public:
  WsConn(Shared& sh, ThreadStats& st, asio::io_context& ioc, int index)
      : Conn(sh, st, ioc, index), ws_(ioc) {}

  bool Connect(std::string& err) override {
    try {
      tcp::resolver resolver(ioc_);
      beast::get_lowest_layer(ws_).connect(resolver.resolve(sh_.t.host, sh_.t.port));
      beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true));
      std::string tok = sh_.o.token;
      ws_.set_option(websocket::stream_base::decorator([tok](websocket::request_type& req) {
        req.set(http::field::user_agent, "genledger-load");
        if (!tok.empty()) req.set(http::field::authorization, "Bearer " + tok);
      }));
      websocket::response_type res;
      beast::error_code ec;
      ws_.handshake(res, sh_.t.host + ":" + sh_.t.port, sh_.t.path, ec);
      if (ec) {
        err = "WebSocket handshake with " + sh_.o.target + " failed: " + ec.message();
        if (res.result_int() != 0)
          err += " (HTTP " + std::to_string(res.result_int()) + " " + res.body() + ")";
        return false;
      }
      ws_.text(true);
      ws_.auto_fragment(false);
      ws_.read_message_max(uint64_t(256) << 20);
    } catch (const boost::system::system_error& e) {
      err = "cannot connect to " + sh_.o.target + ": " + e.code().message();
      return false;
    } catch (const std::exception& e) {
      err = "cannot connect to " + sh_.o.target + ": " + e.what();
      return false;
    }
    return true;
  }

  asio::awaitable<void> Run() override {
    reader_running_ = true;   // set before the reader first runs: the writer waits for it
    asio::co_spawn(ioc_, Reader(), asio::detached);
    size_t depth = size_t(std::max(1, sh_.o.pipeline));
    // Frames sent back to back are corked into one socket write (up to kCorkBytes): one send()
    // per frame made the tool cost as much CPU per op as the server it measures. The cork is
    // lifted before every wait, so nothing sits in the buffer while the tool waits.
    CoalescingStream& out = ws_.next_layer();
    for (;;) {
      if (dead_) break;
      Clock::time_point now = Clock::now(), due;
      Next nx = Decide(now, depth, due);
      if (nx != Next::kSend || out.pending_bytes() >= kCorkBytes) out.Uncork();
      if (nx == Next::kDone) break;
      if (nx == Next::kWaitSpace) { co_await WaitSpace(); continue; }
      if (nx == Next::kWaitRate) { co_await WaitUntil(due); continue; }
      if (out.pending_bytes() < kCorkBytes) out.Cork();
      Build(due, /*array_form=*/true, /*batch_form=*/false);
      beast::error_code ec;
      co_await ws_.async_write(asio::buffer(body_), asio::redirect_error(kAwait, ec));
      if (ec) {
        if (!dead_) { dead_ = true; lost_reason_ = "connection_lost"; st_.Error("write_failed"); }
        break;
      }
    }
    writer_done_ = true;
    if (!dead_ && !inflight_.empty()) lost_reason_ = "drain_timeout";
    beast::error_code ec;
    if (!dead_) {
      beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(5));
      co_await ws_.async_close(websocket::close_code::normal, asio::redirect_error(kAwait, ec));
    }
    // Make sure the reader is not left waiting.
    beast::get_lowest_layer(ws_).close();
    while (reader_running_) co_await WaitSpace();
    active_ = false;
    finished_at_ = Clock::now();
  }

 private:
  asio::awaitable<void> Reader() {
    beast::flat_buffer buf;
    for (;;) {
      beast::error_code ec;
      co_await ws_.async_read(buf, asio::redirect_error(kAwait, ec));
      if (ec) {
        if (!writer_done_ || !inflight_.empty()) {
          if (!dead_) { dead_ = true; lost_reason_ = "connection_lost"; }
        }
        break;
      }
      auto now = Clock::now();
      std::string_view text(static_cast<const char*>(buf.data().data()), buf.size());
      if (inflight_.empty()) {
        st_.Error("unexpected_reply");
        ++st_.unexpected;
      } else {
        CompleteFront(text, 200, false, now);
      }
      buf.consume(buf.size());
    }
    reader_running_ = false;
    space_.cancel();
  }

  static constexpr size_t kCorkBytes = 64 * 1024;
  websocket::stream<CoalescingStream> ws_;
  bool dead_ = false;
  bool writer_done_ = false;
  bool reader_running_ = false;
};

class HttpConn final : public Conn {
 public:
  HttpConn(Shared& sh, ThreadStats& st, asio::io_context& ioc, int index)
      : Conn(sh, st, ioc, index), stream_(ioc) {}

  bool Connect(std::string& err) override {
    try {
      tcp::resolver resolver(ioc_);
      stream_.connect(resolver.resolve(sh_.t.host, sh_.t.port));
      stream_.socket().set_option(tcp::no_delay(true));
    } catch (const boost::system::system_error& e) {
      err = "cannot connect to " + sh_.o.target + ": " + e.code().message();
      return false;
    } catch (const std::exception& e) {
      err = "cannot connect to " + sh_.o.target + ": " + e.what();
      return false;
    }
    host_ = sh_.t.host + ":" + sh_.t.port;
    return true;
  }

  asio::awaitable<void> Run() override {
    bool batch = sh_.o.batch > 1;
    http::request<http::string_body> req;
    req.version(11);
    req.method(http::verb::post);
    req.set(http::field::host, host_);
    req.set(http::field::content_type, "application/json");
    if (!sh_.o.token.empty()) req.set(http::field::authorization, "Bearer " + sh_.o.token);
    beast::flat_buffer buf;
    for (;;) {
      Clock::time_point now = Clock::now(), due;
      Next nx = Decide(now, 1, due);
      if (nx == Next::kDone) break;
      if (nx == Next::kWaitSpace) break;   // cannot happen with one request at a time
      if (nx == Next::kWaitRate) { co_await WaitUntil(due); continue; }
      int kind = Build(due, false, batch);
      const char* path = batch ? "/v1/batch"
                         : kind == kOpCharge ? "/v1/charge"
                         : kind == kOpReserve ? "/v1/reserve"
                         : kind == kOpCommit ? "/v1/commit" : "/v1/release";
      req.target(path);
      req.body().swap(body_);
      req.prepare_payload();
      beast::error_code ec;
      stream_.expires_at(sh_.hard_stop);
      co_await http::async_write(stream_, req, asio::redirect_error(kAwait, ec));
      req.body().swap(body_);
      if (ec) { lost_reason_ = ec == beast::error::timeout ? "drain_timeout" : "connection_lost"; break; }
      http::response<http::string_body> res;
      co_await http::async_read(stream_, buf, res, asio::redirect_error(kAwait, ec));
      if (ec) { lost_reason_ = ec == beast::error::timeout ? "drain_timeout" : "connection_lost"; break; }
      CompleteFront(res.body(), int(res.result_int()), !batch, Clock::now());
      if (res.need_eof()) {
        st_.Error("server_closed_keepalive");
        ++st_.unexpected;
        break;
      }
    }
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
    active_ = false;
    finished_at_ = Clock::now();
  }

 private:
  beast::tcp_stream stream_;
  std::string host_;
};

}  // namespace

std::unique_ptr<Conn> MakeWsConn(Shared& sh, ThreadStats& st, asio::io_context& ioc, int index) {
  return std::make_unique<WsConn>(sh, st, ioc, index);
}

std::unique_ptr<Conn> MakeHttpConn(Shared& sh, ThreadStats& st, asio::io_context& ioc, int index) {
  return std::make_unique<HttpConn>(sh, st, ioc, index);
}

}  // namespace genledger::load
