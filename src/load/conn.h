// genledger-load: one load connection. Conn generates the ops, builds frames and accounts for
// replies (shared by both transports); WsConn and HttpConn (transport.cc) add the I/O.
//
// A connection and its coroutines never leave their thread's io_context, so Conn and the
// thread's ThreadStats need no locks; only Shared's progress window is locked.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "load/load.h"
#include "load/target.h"

namespace genledger::load {

using Clock = std::chrono::steady_clock;

// The run as every thread sees it: options, schedule, and the progress window.
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

// One thread's totals, merged into the LoadReport after the threads end.
struct ThreadStats {
  Histogram all;
  std::vector<Histogram> by_kind = std::vector<Histogram>(kOpKinds);
  std::vector<uint64_t> count_by_kind = std::vector<uint64_t>(kOpKinds, 0);
  uint64_t ops = 0, ok = 0, refused = 0, unexpected = 0, unknown = 0, frames = 0;
  std::map<std::string, uint64_t, std::less<>> errors;
  std::vector<int64_t> debit;    // per workspace: sum of cost of acknowledged charges/commits
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
  uint8_t kind;   // LoadOpKind
};

// A frame (WebSocket) or request (HTTP) in flight: what its replies must be matched against.
struct FrameRec {
  Clock::time_point intended;
  uint64_t seq_base = 0;
  std::vector<OpMeta> ops;
};

class Conn {
 public:
  Conn(Shared& sh, ThreadStats& st, boost::asio::io_context& ioc, int index);
  virtual ~Conn() = default;
  // Connects (and for WebSocket, handshakes) synchronously, before the clock starts.
  virtual bool Connect(std::string& err) = 0;
  // Sends until the duration (or rate schedule) ends and in-flight ops are answered or the
  // drain deadline passes; then sets finished_at().
  virtual boost::asio::awaitable<void> Run() = 0;

  // After the io_context stopped: ops still in flight have no known outcome.
  void Finish();
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

  // Decides what to send next: kSend (with `due`, the op's intended send time), wait for
  // pipeline space, wait until `due` (rate schedule), or done.
  enum class Next { kSend, kWaitSpace, kWaitRate, kDone };
  Next Decide(Clock::time_point now, size_t max_inflight, Clock::time_point& due);

  // Builds the next frame/body into body_ and pushes its record. Formats:
  //   array_form: [op,op,...] (WebSocket) ; batch_form: {"ops":[...]} ; else one op body.
  // Returns the op kind of the first op (the HTTP single-op path depends on it).
  int Build(Clock::time_point intended, bool array_form, bool batch_form);

  // Processes the reply to the front frame and pops it.
  void CompleteFront(std::string_view reply, int http_status, bool single, Clock::time_point now);

  boost::asio::awaitable<void> WaitSpace();
  boost::asio::awaitable<void> WaitUntil(Clock::time_point due);

  Shared& sh_;
  ThreadStats& st_;
  boost::asio::io_context& ioc_;
  bool active_ = true;
  Clock::time_point finished_at_{};
  std::string lost_reason_ = "no_reply";
  std::string body_;
  std::deque<FrameRec> inflight_;
  boost::asio::steady_timer space_;

 private:
  // One result of the front frame.
  void Account(const ScannedResult& r, const OpMeta& m, uint64_t expected_seq, bool check_seq);

  int index_;
  uint64_t rng_;
  int mix_total_;
  uint64_t next_seq_ = 0;
  uint64_t frames_scheduled_ = 0;
  bool rate_exhausted_ = false;
  bool send_new_ = true;
  std::vector<FrameRec> free_;
  std::deque<std::pair<uint64_t, uint32_t>> pending_settle_;   // (reservation, workspace)
  boost::asio::steady_timer rate_timer_;
};

// The two transports (transport.cc).
std::unique_ptr<Conn> MakeWsConn(Shared& sh, ThreadStats& st, boost::asio::io_context& ioc, int index);
std::unique_ptr<Conn> MakeHttpConn(Shared& sh, ThreadStats& st, boost::asio::io_context& ioc, int index);

}  // namespace genledger::load
