// genledger-load: the load engine (connections, scheduling, accounting, verification).
//
// Threads: one io_context per thread, each with its share of the connections; a connection
// (and its coroutines) never leaves its thread, so per-connection and per-thread state needs
// no locks. Only the once-a-second progress window and the final merge cross threads.
#include "load/load.h"

#include "server/coalescing_stream.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <latch>
#include <memory>
#include <mutex>
#include <ostream>
#include <sstream>
#include <thread>

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace genledger::load {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

const char* OpKindName(int kind) {
  switch (kind) {
    case kOpCharge: return "charge";
    case kOpReserve: return "reserve";
    case kOpCommit: return "commit";
    case kOpRelease: return "release";
  }
  return "?";
}

namespace {

constexpr auto kAwait = asio::use_awaitable;

// ---------------------------------------------------------------------------------------
// Target URL

struct Target {
  bool ws = false;
  std::string host, port, path;
};

bool ParseTarget(const std::string& url, Target& t, std::string& err) {
  std::string rest;
  if (url.rfind("ws://", 0) == 0) {
    t.ws = true;
    rest = url.substr(5);
  } else if (url.rfind("http://", 0) == 0) {
    t.ws = false;
    rest = url.substr(7);
  } else {
    err = "--target must start with ws:// or http:// (got '" + url + "')";
    return false;
  }
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  t.path = slash == std::string::npos ? "" : rest.substr(slash);
  if (t.ws && (t.path.empty() || t.path == "/")) t.path = "/v1/ws";
  if (!t.ws && t.path != "" && t.path != "/") {
    err = "an http:// --target is the server's base URL (no path), got '" + url + "'";
    return false;
  }
  if (!hostport.empty() && hostport[0] == '[') {
    size_t close = hostport.find(']');
    if (close == std::string::npos || close + 1 >= hostport.size() || hostport[close + 1] != ':') {
      err = "bad host:port in --target '" + url + "'";
      return false;
    }
    t.host = hostport.substr(1, close - 1);
    t.port = hostport.substr(close + 2);
  } else {
    size_t colon = hostport.rfind(':');
    if (colon == std::string::npos) {
      t.host = hostport;
      t.port = "80";
    } else {
      t.host = hostport.substr(0, colon);
      t.port = hostport.substr(colon + 1);
    }
  }
  unsigned port = 0;
  auto r = std::from_chars(t.port.data(), t.port.data() + t.port.size(), port);
  if (t.host.empty() || r.ec != std::errc() || r.ptr != t.port.data() + t.port.size() ||
      port == 0 || port > 65535) {
    err = "bad host:port in --target '" + url + "'";
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// Synchronous HTTP for setup and verification (a handful of calls; not the hot path).

struct SyncReply {
  int status = 0;   // 0: transport error (see body)
  std::string body;
};

SyncReply SyncHttp(const Target& t, http::verb verb, const std::string& target,
                   const std::string& body, const std::string& token) {
  SyncReply out;
  try {
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(10));
    stream.connect(resolver.resolve(t.host, t.port));
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, t.host + ":" + t.port);
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    if (verb != http::verb::get) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(stream, buf, res);
    out.status = int(res.result_int());
    out.body = std::move(res.body());
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  } catch (const boost::system::system_error& e) {
    out.status = 0;
    out.body = e.code().message();
  } catch (const std::exception& e) {
    out.status = 0;
    out.body = e.what();
  }
  return out;
}

struct WsState {
  int64_t used = 0, reserved = 0;
};

bool ReadWorkspace(const Target& t, const std::string& ws, const std::string& token,
                   WsState& s, std::string& err) {
  SyncReply r = SyncHttp(t, http::verb::get, "/v1/workspaces/" + ws, "", token);
  if (r.status != 200) {
    err = "GET /v1/workspaces/" + ws + ": " +
          (r.status ? "HTTP " + std::to_string(r.status) + " " + r.body : r.body);
    return false;
  }
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(r.body, ec);
  if (ec || !v.is_object()) {
    err = "GET /v1/workspaces/" + ws + ": unparsable reply " + r.body;
    return false;
  }
  auto& o = v.as_object();
  auto get = [&](const char* k, int64_t& out) {
    auto* p = o.if_contains(k);
    if (!p || !p->is_number()) return false;
    if (p->is_int64()) out = p->as_int64();
    else if (p->is_uint64()) out = int64_t(p->as_uint64());
    else return false;
    return true;
  };
  if (!get("used", s.used) || !get("reserved", s.reserved)) {
    err = "GET /v1/workspaces/" + ws + ": no used/reserved in " + r.body;
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// Shared and per-thread state

struct Shared {
  LoadOptions o;
  Target t;
  std::vector<std::string> ws_names;
  Clock::time_point start, deadline, hard_stop;
  double frame_interval_s = 0;   // per connection, open loop
  int conns = 0;

  std::mutex mu;                 // guards window*
  Histogram window;
  uint64_t window_ops = 0, window_errors = 0, window_refused = 0;
  std::atomic<int64_t> inflight_ops{0};
};

struct ThreadStats {
  Histogram all;
  std::vector<Histogram> by_kind = std::vector<Histogram>(kOpKinds);
  std::vector<uint64_t> count_by_kind = std::vector<uint64_t>(kOpKinds, 0);
  uint64_t ops = 0, ok = 0, refused = 0, unexpected = 0, unknown = 0, frames = 0;
  std::map<std::string, uint64_t, std::less<>> errors;
  std::vector<int64_t> debit;
  // since the last progress tick
  Histogram window;
  uint64_t w_ops = 0, w_errors = 0, w_refused = 0;

  void Error(std::string_view code, uint64_t n = 1) {
    auto it = errors.find(code);
    if (it == errors.end()) it = errors.emplace(std::string(code), 0).first;
    it->second += n;
  }
};

struct OpMeta {
  uint32_t ws;
  uint8_t kind;
};

struct FrameRec {
  Clock::time_point intended;
  uint64_t seq_base = 0;
  std::vector<OpMeta> ops;
};

// Model fragments per category (costs come from the server's reply, never assumed).
constexpr std::string_view kFragText = "\"model\":\"gpt-4o\",\"quantity\":1";
constexpr std::string_view kFragImage = "\"model\":\"stable-diffusion\",\"quantity\":1";
constexpr std::string_view kFragVideo = "\"model\":\"veo-3\",\"seconds\":4";

inline void AppendU64(std::string& s, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  s.append(buf, r.ptr);
}

// ---------------------------------------------------------------------------------------
// A connection: op generation, frame building and reply accounting shared by both
// transports; WsConn / HttpConn add the I/O.

class Conn {
 public:
  Conn(Shared& sh, ThreadStats& st, asio::io_context& ioc, int index)
      : sh_(sh), st_(st), ioc_(ioc), index_(index), space_(ioc), rate_timer_(ioc) {
    rng_ = 0x9E3779B97F4A7C15ull * uint64_t(index + 1) ^ 0xD1B54A32D192ED03ull;
    if (rng_ == 0) rng_ = 1;
    body_.reserve(size_t(sh.o.batch) * 128 + 64);
    mix_total_ = sh.o.mix_text + sh.o.mix_image + sh.o.mix_video;
  }
  virtual ~Conn() = default;
  virtual bool Connect(std::string& err) = 0;
  virtual asio::awaitable<void> Run() = 0;

  // After the io_context stopped: ops still in flight have no known outcome.
  void Finish() {
    for (auto& f : inflight_) {
      st_.unknown += f.ops.size();
      st_.unexpected += f.ops.size();
      st_.Error(lost_reason_, f.ops.size());
    }
    inflight_.clear();
  }
  bool active() const { return active_; }
  Clock::time_point finished_at() const { return finished_at_; }

 protected:
  uint64_t Rand() {
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    return rng_ * 2685821657736338717ull;
  }
  bool NewOpsAllowed(Clock::time_point now) const { return now < sh_.deadline; }
  bool DrainExpired(Clock::time_point now) const { return now >= sh_.hard_stop; }

  // Decides what to send next. Returns false when this connection is done sending.
  // Sets `wait_until` (rate schedule) when the next frame is not yet due.
  enum class Next { kSend, kWaitSpace, kWaitRate, kDone };
  Next Decide(Clock::time_point now, size_t max_inflight, Clock::time_point& due) {
    if (DrainExpired(now)) return Next::kDone;
    bool can_new = NewOpsAllowed(now) && !rate_exhausted_;
    if (pending_settle_.empty() && !can_new) return inflight_.empty() ? Next::kDone : Next::kWaitSpace;
    if (inflight_.size() >= max_inflight) return Next::kWaitSpace;
    if (!pending_settle_.empty()) {
      send_new_ = sh_.o.rate <= 0 && can_new;
      due = now;
      return Next::kSend;
    }
    send_new_ = true;
    if (sh_.o.rate > 0) {
      double phase = double(index_) / double(sh_.conns);
      double at = (double(frames_scheduled_) + phase) * sh_.frame_interval_s;
      due = sh_.start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(at));
      if (due >= sh_.deadline) {
        rate_exhausted_ = true;
        return inflight_.empty() ? Next::kDone : Next::kWaitSpace;
      }
      if (now < due) return Next::kWaitRate;
      ++frames_scheduled_;
    } else {
      due = now;
    }
    return Next::kSend;
  }

  // Builds the next frame/body into body_ and pushes its record. Formats:
  //   array_form: [op,op,...] (WebSocket) ; batch_form: {"ops":[...]} ; else one op body.
  // Returns the op kind of the first op (the HTTP single-op path depends on it).
  int Build(Clock::time_point intended, bool array_form, bool batch_form) {
    FrameRec rec;
    if (!free_.empty()) {
      rec = std::move(free_.back());
      free_.pop_back();
      rec.ops.clear();
    }
    rec.intended = intended;
    rec.seq_base = next_seq_;
    body_.clear();
    bool with_op = array_form || batch_form;
    if (batch_form) body_ += "{\"ops\":[";
    else if (array_form) body_ += '[';
    int n = with_op ? sh_.o.batch : 1;
    int first_kind = -1;
    for (int i = 0; i < n; ++i) {
      OpMeta m;
      uint64_t rsv = 0;
      if (!pending_settle_.empty()) {
        rsv = pending_settle_.front().first;
        m.ws = pending_settle_.front().second;
        pending_settle_.pop_front();
        m.kind = sh_.o.op == OpMode::kReserveRelease ? kOpRelease : kOpCommit;
      } else if (send_new_) {
        m.ws = uint32_t(Rand() % uint64_t(sh_.ws_names.size()));
        m.kind = sh_.o.op == OpMode::kCharge ? kOpCharge : kOpReserve;
      } else {
        break;
      }
      if (first_kind < 0) first_kind = m.kind;
      if (i) body_ += ',';
      if (m.kind == kOpCharge || m.kind == kOpReserve) {
        body_ += with_op ? (m.kind == kOpCharge ? "{\"op\":\"charge\",\"workspace\":\""
                                                : "{\"op\":\"reserve\",\"workspace\":\"")
                         : "{\"workspace\":\"";
        body_ += sh_.ws_names[m.ws];
        body_ += "\",\"user\":\"u-";
        AppendU64(body_, Rand() % uint64_t(sh_.o.users));
        body_ += "\",";
        uint64_t c = Rand() % uint64_t(mix_total_);
        if (c < uint64_t(sh_.o.mix_text)) body_ += kFragText;
        else if (c < uint64_t(sh_.o.mix_text + sh_.o.mix_image)) body_ += kFragImage;
        else body_ += kFragVideo;
      } else {
        body_ += with_op ? (m.kind == kOpCommit ? "{\"op\":\"commit\",\"reservation\":\"rs_"
                                                : "{\"op\":\"release\",\"reservation\":\"rs_")
                         : "{\"reservation\":\"rs_";
        AppendU64(body_, rsv);
        body_ += '"';
      }
      if (with_op) {
        body_ += ",\"seq\":";
        AppendU64(body_, next_seq_);
      }
      ++next_seq_;
      body_ += '}';
      rec.ops.push_back(m);
    }
    if (batch_form) body_ += "]}";
    else if (array_form) body_ += ']';
    sh_.inflight_ops.fetch_add(int64_t(rec.ops.size()), std::memory_order_relaxed);
    inflight_.push_back(std::move(rec));
    return first_kind;
  }

  // One result of the front frame.
  void Account(const ScannedResult& r, const OpMeta& m, uint64_t expected_seq, bool check_seq) {
    ++st_.ops;
    ++st_.w_ops;
    ++st_.count_by_kind[m.kind];
    if (check_seq && (!r.has_seq || r.seq != expected_seq)) {
      ++st_.unexpected;
      ++st_.w_errors;
      st_.Error("seq_mismatch");
      // The outcome is unattributable: count it but do not account cost.
      return;
    }
    if (r.status == 200) {
      ++st_.ok;
      if (m.kind == kOpCharge || m.kind == kOpCommit) {
        if (r.has_cost) st_.debit[m.ws] += r.cost;
        else { ++st_.unexpected; ++st_.w_errors; st_.Error("reply_without_cost"); }
      } else if (m.kind == kOpReserve) {
        if (r.reservation) pending_settle_.emplace_back(r.reservation, m.ws);
        else { ++st_.unexpected; ++st_.w_errors; st_.Error("reply_without_reservation"); }
      }
    } else if (r.status == 402) {
      ++st_.refused;
      ++st_.w_refused;
      st_.Error(r.code.empty() ? std::string_view("http_402") : r.code);
    } else {
      ++st_.unexpected;
      ++st_.w_errors;
      if (!r.code.empty()) st_.Error(r.code);
      else st_.Error("http_" + std::to_string(r.status));
    }
  }

  // Processes the reply to the front frame and pops it.
  void CompleteFront(std::string_view reply, int http_status, bool single, Clock::time_point now) {
    FrameRec& f = inflight_.front();
    uint64_t lat = uint64_t(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::microseconds>(now - f.intended).count()));
    size_t n = f.ops.size();
    if (single) {
      ScannedResult r = ScanSingle(reply, http_status);
      Account(r, f.ops[0], 0, false);
    } else if (http_status != 200) {
      // Whole-body failure of /v1/batch: nothing ran.
      ScannedResult r = ScanSingle(reply, http_status);
      for (size_t i = 0; i < n; ++i) Account(r, f.ops[i], 0, false);
    } else {
      size_t i = 0;
      ScanResults(reply, [&](const ScannedResult& r) {
        if (i < n) Account(r, f.ops[i], f.seq_base + i, true);
        ++i;
      });
      if (i != n) {
        // A whole-frame error object, or a reply of the wrong length.
        uint64_t missing = i < n ? n - i : 0;
        st_.Error(i == 1 && n > 1 ? "frame_error" : "reply_length_mismatch", 1);
        st_.unexpected += missing;
        st_.unknown += missing;
        st_.ops += missing;
      }
    }
    uint64_t per_kind[kOpKinds] = {};
    for (const OpMeta& m : f.ops) ++per_kind[m.kind];
    for (int k = 0; k < kOpKinds; ++k)
      if (per_kind[k]) st_.by_kind[size_t(k)].RecordN(lat, per_kind[k]);
    st_.all.RecordN(lat, n);
    st_.window.RecordN(lat, n);
    ++st_.frames;
    sh_.inflight_ops.fetch_sub(int64_t(n), std::memory_order_relaxed);
    free_.push_back(std::move(f));
    inflight_.pop_front();
    space_.cancel();
  }

  asio::awaitable<void> WaitSpace() {
    beast::error_code ec;
    space_.expires_at(std::min(sh_.hard_stop, Clock::now() + std::chrono::seconds(1)));
    co_await space_.async_wait(asio::redirect_error(kAwait, ec));
  }
  asio::awaitable<void> WaitUntil(Clock::time_point due) {
    beast::error_code ec;
    rate_timer_.expires_at(due);
    co_await rate_timer_.async_wait(asio::redirect_error(kAwait, ec));
  }

  Shared& sh_;
  ThreadStats& st_;
  asio::io_context& ioc_;
  int index_;
  uint64_t rng_;
  int mix_total_;
  uint64_t next_seq_ = 0;
  uint64_t frames_scheduled_ = 0;
  bool rate_exhausted_ = false;
  bool send_new_ = true;
  bool active_ = true;
  Clock::time_point finished_at_{};
  std::string lost_reason_ = "no_reply";
  std::string body_;
  std::deque<FrameRec> inflight_;
  std::vector<FrameRec> free_;
  std::deque<std::pair<uint64_t, uint32_t>> pending_settle_;   // (reservation, workspace)
  asio::steady_timer space_;
  asio::steady_timer rate_timer_;
};

// ---------------------------------------------------------------------------------------

using genledger::server::CoalescingStream;

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

// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------

struct ThreadCtx {
  asio::io_context ioc{1};
  ThreadStats st;
  std::vector<std::unique_ptr<Conn>> conns;
  std::string connect_error;
};

asio::awaitable<void> ProgressTicker(Shared& sh, ThreadCtx& tc) {
  asio::steady_timer t(tc.ioc);
  auto next = Clock::now();
  for (;;) {
    bool any = false;
    for (auto& c : tc.conns) any = any || c->active();
    next += std::chrono::milliseconds(250);
    {
      std::lock_guard lk(sh.mu);
      sh.window.Merge(tc.st.window);
      sh.window_ops += tc.st.w_ops;
      sh.window_errors += tc.st.w_errors;
      sh.window_refused += tc.st.w_refused;
    }
    tc.st.window.Reset();
    tc.st.w_ops = tc.st.w_errors = tc.st.w_refused = 0;
    if (!any) break;
    t.expires_at(next);
    beast::error_code ec;
    co_await t.async_wait(asio::redirect_error(kAwait, ec));
  }
}

asio::awaitable<void> Supervise(ThreadCtx& tc, asio::steady_timer& wd) {
  asio::steady_timer t(tc.ioc);
  for (;;) {
    bool any = false;
    for (auto& c : tc.conns) any = any || c->active();
    if (!any) break;
    t.expires_after(std::chrono::milliseconds(20));
    beast::error_code ec;
    co_await t.async_wait(asio::redirect_error(kAwait, ec));
  }
  wd.cancel();
}

std::string FmtUs(uint64_t us) {
  char b[32];
  if (us < 10'000) std::snprintf(b, sizeof b, "%lluus", (unsigned long long)us);
  else if (us < 10'000'000) std::snprintf(b, sizeof b, "%.2fms", double(us) / 1e3);
  else std::snprintf(b, sizeof b, "%.2fs", double(us) / 1e6);
  return b;
}

}  // namespace

// -----------------------------------------------------------------------------------------

LoadReport RunLoad(const LoadOptions& in, std::ostream& progress) {
  LoadReport rep;
  auto usage = [&](std::string msg) {
    rep.options = in;
    rep.usage_error = true;
    rep.error = std::move(msg);
    rep.exit_code = 2;
    return rep;
  };
  Shared sh;
  sh.o = in;
  LoadOptions& o = sh.o;
  std::string err;
  if (!ParseTarget(o.target, sh.t, err)) return usage(err);
  if (o.connections <= 0) o.connections = sh.t.ws ? 4 : 32;
  if (o.batch <= 0) o.batch = sh.t.ws ? 100 : 1;
  if (o.admin_token.empty()) o.admin_token = o.token;
  if (o.threads <= 0) o.threads = int(std::max(1u, std::thread::hardware_concurrency()));
  o.threads = std::min(o.threads, o.connections);
  if (o.workspaces < 1 || o.users < 1) return usage("--workspaces and --users must be >= 1");
  if (o.batch > 100000) return usage("--batch too large");
  if (o.mix_text < 0 || o.mix_image < 0 || o.mix_video < 0 ||
      o.mix_text + o.mix_image + o.mix_video <= 0)
    return usage("--mix weights must be >= 0 with a positive sum");
  if (o.duration_s <= 0) return usage("--duration must be > 0");
  sh.conns = o.connections;
  if (o.rate > 0) sh.frame_interval_s = double(o.batch) * double(o.connections) / o.rate;

  for (int i = 0; i < o.workspaces; ++i) sh.ws_names.push_back(o.workspace_prefix + std::to_string(i));

  // Setup: create/raise the workspaces, then read the starting point.
  if (o.setup) {
    for (auto& w : sh.ws_names) {
      SyncReply r = SyncHttp(sh.t, http::verb::put, "/v1/workspaces/" + w,
                             "{\"limit\":" + std::to_string(o.setup_limit) + "}", o.admin_token);
      if (r.status == 0) return usage("cannot reach " + o.target + ": " + r.body);
      if (r.status == 401 || r.status == 403)
        return usage("setup (PUT /v1/workspaces/" + w + ") answered HTTP " +
                     std::to_string(r.status) +
                     ": it needs an admin token (--admin-token/--token) or an open loopback "
                     "server; or use --no-setup with existing workspaces");
      if (r.status != 200)
        return usage("setup PUT /v1/workspaces/" + w + " answered HTTP " +
                     std::to_string(r.status) + " " + r.body);
    }
  }
  std::vector<WsState> before(sh.ws_names.size());
  if (o.verify) {
    for (size_t i = 0; i < sh.ws_names.size(); ++i)
      if (!ReadWorkspace(sh.t, sh.ws_names[i], o.token.empty() ? o.admin_token : o.token,
                         before[i], err))
        return usage(err + (o.setup ? "" : " (with --no-setup the workspaces must exist)"));
  }

  // Threads and connections.
  int T = o.threads;
  std::vector<std::unique_ptr<ThreadCtx>> ctx;
  for (int i = 0; i < T; ++i) {
    ctx.push_back(std::make_unique<ThreadCtx>());
    ctx.back()->st.debit.assign(sh.ws_names.size(), 0);
  }
  for (int c = 0; c < o.connections; ++c) {
    ThreadCtx& tc = *ctx[size_t(c % T)];
    if (sh.t.ws) tc.conns.push_back(std::make_unique<WsConn>(sh, tc.st, tc.ioc, c));
    else tc.conns.push_back(std::make_unique<HttpConn>(sh, tc.st, tc.ioc, c));
  }
  std::latch connected(T);
  std::latch go(1);
  std::atomic<bool> abort{false};
  std::atomic<int> running{T};
  std::mutex done_mu;
  std::condition_variable done_cv;
  std::vector<std::thread> threads;
  for (int i = 0; i < T; ++i) {
    threads.emplace_back([&, i] {
      ThreadCtx& tc = *ctx[size_t(i)];
      for (auto& c : tc.conns) {
        std::string e;
        if (!c->Connect(e)) {
          tc.connect_error = e;
          break;
        }
      }
      connected.count_down();
      go.wait();
      if (!abort.load()) {
        for (auto& c : tc.conns) asio::co_spawn(tc.ioc, c->Run(), asio::detached);
        asio::co_spawn(tc.ioc, ProgressTicker(sh, tc), asio::detached);
        // Watchdog: whatever happens, stop a little after the drain deadline.
        asio::steady_timer wd(tc.ioc);
        wd.expires_at(sh.hard_stop + std::chrono::seconds(5));
        wd.async_wait([&tc](const beast::error_code& ec) {
          if (!ec) tc.ioc.stop();
        });
        // Run until every connection finished (the watchdog is then cancelled).
        asio::co_spawn(tc.ioc, Supervise(tc, wd), asio::detached);
        tc.ioc.run();
        for (auto& c : tc.conns) c->Finish();
      }
      {
        std::lock_guard lk(done_mu);
        running.fetch_sub(1);
      }
      done_cv.notify_all();
    });
  }
  connected.wait();
  for (auto& tc : ctx)
    if (!tc->connect_error.empty()) {
      abort = true;
      err = tc->connect_error;
    }
  sh.start = Clock::now();
  sh.deadline = sh.start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(o.duration_s));
  sh.hard_stop = sh.deadline + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(o.drain_timeout_s));
  go.count_down();

  // Progress, once per second.
  auto last = sh.start;
  {
    std::unique_lock lk(done_mu);
    for (;;) {
      auto wake = last + std::chrono::seconds(1);
      if (done_cv.wait_until(lk, wake, [&] { return running.load() == 0; })) break;
      auto now = Clock::now();
      double dt = std::chrono::duration<double>(now - last).count();
      last = now;
      std::lock_guard wl(sh.mu);
      if (o.progress && !abort) {
        char line[256];
        std::snprintf(line, sizeof line,
                      "[%5.1fs] %9.0f ops/s  errors %llu  refused %llu  p50 %s  p99 %s  in-flight %lld\n",
                      std::chrono::duration<double>(now - sh.start).count(),
                      double(sh.window_ops) / dt, (unsigned long long)sh.window_errors,
                      (unsigned long long)sh.window_refused,
                      FmtUs(sh.window.Percentile(50)).c_str(),
                      FmtUs(sh.window.Percentile(99)).c_str(),
                      (long long)sh.inflight_ops.load(std::memory_order_relaxed));
        progress << line << std::flush;
      }
      sh.window.Reset();
      sh.window_ops = sh.window_errors = sh.window_refused = 0;
    }
  }
  for (auto& t : threads) t.join();
  auto end = sh.start;   // when the last connection finished (not the teardown after it)
  bool all_finished = true;
  for (auto& tc : ctx)
    for (auto& c : tc->conns) {
      if (c->finished_at() == Clock::time_point{}) all_finished = false;
      end = std::max(end, c->finished_at());
    }
  if (!all_finished || end == sh.start) end = Clock::now();
  if (abort) return usage(err);

  // Merge.
  std::vector<int64_t> debit(sh.ws_names.size(), 0);
  for (auto& tcp : ctx) {
    ThreadStats& s = tcp->st;
    rep.all.Merge(s.all);
    for (int k = 0; k < kOpKinds; ++k) {
      rep.by_kind[size_t(k)].Merge(s.by_kind[size_t(k)]);
      rep.count_by_kind[size_t(k)] += s.count_by_kind[size_t(k)];
    }
    rep.ops += s.ops;
    rep.ok_ops += s.ok;
    rep.refused_402 += s.refused;
    rep.unexpected_errors += s.unexpected;
    rep.unknown_outcome += s.unknown;
    rep.frames += s.frames;
    for (auto& [k, v] : s.errors) rep.errors[k] += v;
    for (size_t i = 0; i < debit.size(); ++i) debit[i] += s.debit[i];
  }
  rep.elapsed_s = std::chrono::duration<double>(end - sh.start).count();
  rep.ops_per_sec = rep.elapsed_s > 0 ? double(rep.ops) / rep.elapsed_s : 0;
  if (!debit.empty()) debit[0] += o.test_extra_expected_debit;
  for (int64_t d : debit) rep.acknowledged_debits += d;

  // Verification.
  if (o.verify) {
    rep.verification_ran = true;
    bool ok = true;
    std::ostringstream msg;
    int read_failures = 0;
    for (size_t i = 0; i < sh.ws_names.size(); ++i) {
      if (read_failures >= 3) {
        msg << "(" << sh.ws_names.size() - i << " more workspaces not read back)\n";
        break;
      }
      WorkspaceCheck c;
      c.workspace = sh.ws_names[i];
      c.used_before = before[i].used;
      c.reserved_before = before[i].reserved;
      c.expected_debit = debit[i];
      WsState after;
      if (!ReadWorkspace(sh.t, sh.ws_names[i], o.token.empty() ? o.admin_token : o.token, after,
                         err)) {
        ok = false;
        c.ok = false;
        ++read_failures;
        msg << "cannot read back " << c.workspace << ": " << err << "\n";
      } else {
        c.used_after = after.used;
        c.reserved_after = after.reserved;
        if (c.used_after - c.used_before != c.expected_debit) {
          c.ok = false;
          msg << "MISMATCH " << c.workspace << ": server used went " << c.used_before << " -> "
              << c.used_after << " (+" << (c.used_after - c.used_before)
              << "), acknowledged debits sum to " << c.expected_debit << " (difference "
              << (c.used_after - c.used_before - c.expected_debit) << ")\n";
        }
        if (c.reserved_after != c.reserved_before) {
          c.ok = false;
          msg << "MISMATCH " << c.workspace << ": reserved went " << c.reserved_before << " -> "
              << c.reserved_after << " (every hold this run made was settled; expected no change)\n";
        }
      }
      ok = ok && c.ok;
      rep.checks.push_back(c);
    }
    if (rep.unknown_outcome > 0) {
      ok = false;
      msg << rep.unknown_outcome
          << " ops got no reply (connection lost or drain timeout): their debits are unknown, "
             "so the ledger cannot be checked exactly\n";
    }
    rep.verified = ok;
    if (ok) {
      int64_t total = 0;
      for (auto& c : rep.checks) total += c.expected_debit;
      msg << "verification passed: " << rep.checks.size()
          << " workspaces, used grew by exactly the acknowledged debits (" << total
          << " generations), reserved unchanged\n";
    }
    rep.verify_message = msg.str();
  }
  double rate = rep.ops ? double(rep.unexpected_errors) / double(rep.ops) : 0;
  rep.error_rate_exceeded = rep.unexpected_errors > 0 && rate > o.max_error_rate;
  if (rep.ops == 0) rep.error_rate_exceeded = true;
  rep.options = o;
  rep.exit_code = (rep.verification_ran && !rep.verified) || rep.error_rate_exceeded ? 1 : 0;
  // A token the server refuses is a usage error, not a load result.
  rep.auth_refused = rep.errors.count("unauthorized") + rep.errors.count("forbidden") > 0;
  if (rep.auth_refused) rep.exit_code = 2;
  return rep;
}

namespace {
void JsonStr(std::string& out, std::string_view v) {
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') { out += '\\'; out += c; }
    else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", unsigned(c));
      out += b;
    } else out += c;
  }
  out += '"';
}
void JsonKey(std::string& out, std::string_view k) {
  if (out.back() != '{') out += ',';
  JsonStr(out, k);
  out += ':';
}
void JsonU(std::string& out, std::string_view k, uint64_t v) {
  JsonKey(out, k);
  out += std::to_string(v);
}
void JsonD(std::string& out, std::string_view k, double v, int decimals) {
  JsonKey(out, k);
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, std::isfinite(v) ? v : 0.0);
  out += b;
}
void JsonHist(std::string& out, const Histogram& h) {
  JsonU(out, "p50_us", h.Percentile(50));
  JsonU(out, "p90_us", h.Percentile(90));
  JsonU(out, "p99_us", h.Percentile(99));
  JsonU(out, "p999_us", h.Percentile(99.9));
  JsonU(out, "max_us", h.max());
  JsonD(out, "mean_us", h.mean(), 1);
}
}  // namespace

// One line, hand-built (no exponents in numbers), stable key order.
std::string ReportJson(const LoadReport& r) {
  const LoadOptions& o = r.options;
  std::string j = "{";
  JsonU(j, "ops", r.ops);
  JsonD(j, "ops_per_sec", r.ops_per_sec, 1);
  JsonU(j, "errors", r.unexpected_errors);
  JsonU(j, "refused_402", r.refused_402);
  JsonU(j, "unknown_outcome", r.unknown_outcome);
  JsonKey(j, "acknowledged_debits");
  j += std::to_string(r.acknowledged_debits);
  JsonHist(j, r.all);
  JsonKey(j, "errors_by_code");
  j += '{';
  for (auto& [k, v] : r.errors) JsonU(j, k, v);
  j += '}';
  JsonKey(j, "by_op");
  j += '{';
  for (int k = 0; k < kOpKinds; ++k) {
    const Histogram& h = r.by_kind[size_t(k)];
    if (!h.count()) continue;
    JsonKey(j, OpKindName(k));
    j += '{';
    JsonU(j, "ops", h.count());
    JsonHist(j, h);
    j += '}';
  }
  j += '}';
  JsonU(j, "frames", r.frames);
  JsonD(j, "elapsed_s", r.elapsed_s, 3);
  JsonKey(j, "target");
  JsonStr(j, o.target);
  JsonKey(j, "transport");
  JsonStr(j, o.target.rfind("ws://", 0) == 0 ? "ws" : "http");
  JsonKey(j, "op");
  JsonStr(j, o.op == OpMode::kCharge ? "charge"
             : o.op == OpMode::kReserveCommit ? "reserve-commit" : "reserve-release");
  JsonU(j, "connections", uint64_t(std::max(0, o.connections)));
  JsonU(j, "batch", uint64_t(std::max(0, o.batch)));
  JsonU(j, "pipeline", uint64_t(std::max(0, o.pipeline)));
  JsonU(j, "threads", uint64_t(std::max(0, o.threads)));
  JsonD(j, "rate", o.rate, 1);
  JsonD(j, "duration_s", o.duration_s, 3);
  JsonKey(j, "verified");
  j += r.verification_ran ? (r.verified ? "true" : "false") : "null";
  if (r.usage_error) {
    JsonKey(j, "error");
    JsonStr(j, r.error);
  }
  JsonU(j, "exit_code", uint64_t(r.exit_code));
  j += '}';
  return j;
}

void PrintReport(const LoadReport& r, std::ostream& out, bool json) {
  const LoadOptions& o = r.options;
  char line[512];
  std::snprintf(line, sizeof line,
                "genledger-load: %s, %d connections, batch %d%s, %.2fs\n", o.target.c_str(),
                o.connections, o.batch,
                o.rate > 0 ? (", open loop " + std::to_string(int64_t(o.rate)) + " ops/s").c_str()
                           : ", closed loop",
                r.elapsed_s);
  out << line;
  std::snprintf(line, sizeof line,
                "ops %llu (%.0f ops/s), frames/requests %llu, ok %llu, refused (402) %llu, "
                "unexpected errors %llu, no reply %llu\n",
                (unsigned long long)r.ops, r.ops_per_sec, (unsigned long long)r.frames,
                (unsigned long long)r.ok_ops, (unsigned long long)r.refused_402,
                (unsigned long long)r.unexpected_errors, (unsigned long long)r.unknown_outcome);
  out << line;
  if (!r.errors.empty()) {
    out << "errors by code:";
    for (auto& [k, v] : r.errors) out << " " << k << "=" << v;
    out << "\n";
  }
  out << "latency (us, from intended send time; histogram error <= 0.8%):\n";
  std::snprintf(line, sizeof line, "  %-8s %10s %8s %8s %8s %8s %8s\n", "op", "count", "p50",
                "p90", "p99", "p99.9", "max");
  out << line;
  auto row = [&](const char* name, const Histogram& h) {
    std::snprintf(line, sizeof line, "  %-8s %10llu %8llu %8llu %8llu %8llu %8llu\n", name,
                  (unsigned long long)h.count(), (unsigned long long)h.Percentile(50),
                  (unsigned long long)h.Percentile(90), (unsigned long long)h.Percentile(99),
                  (unsigned long long)h.Percentile(99.9), (unsigned long long)h.max());
    out << line;
  };
  for (int k = 0; k < kOpKinds; ++k)
    if (r.by_kind[size_t(k)].count()) row(OpKindName(k), r.by_kind[size_t(k)]);
  row("all", r.all);
  if (r.verification_ran) out << r.verify_message;
  else out << "verification skipped (--no-verify)\n";
  if (r.error_rate_exceeded)
    out << "FAIL: unexpected error rate "
        << (r.ops ? double(r.unexpected_errors) / double(r.ops) : 1.0) << " above --max-error-rate "
        << o.max_error_rate << (r.ops == 0 ? " (no op completed)" : "") << "\n";
  if (r.auth_refused)
    out << "FAIL: the server refused the token (unauthorized/forbidden): check --token (a gate "
           "or admin token)\n";
  if (json) out << ReportJson(r) << "\n";
  out << std::flush;
}

}  // namespace genledger::load
