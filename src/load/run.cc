// genledger-load: RunLoad (load.h). Resolves the options, sets the workspaces up, runs one
// io_context per thread with its share of the connections, prints progress once a second,
// merges the per-thread totals and verifies the ledger against the acknowledged debits.
//
// Threads: a connection (and its coroutines) never leaves its thread, so per-connection and
// per-thread state needs no locks. Only the progress window and the final merge cross threads.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <latch>
#include <memory>
#include <mutex>
#include <ostream>
#include <sstream>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/verb.hpp>

#include "load/conn.h"
#include "load/load.h"
#include "load/sync_http.h"

namespace genledger::load {

namespace {

namespace asio = boost::asio;
using boost::beast::http::verb;

constexpr auto kAwait = asio::use_awaitable;

struct ThreadCtx {
  asio::io_context ioc{1};
  ThreadStats st;
  std::vector<std::unique_ptr<Conn>> conns;
  std::string connect_error;
};

// Every 250 ms, folds the thread's last interval into the shared progress window.
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
    boost::beast::error_code ec;
    co_await t.async_wait(asio::redirect_error(kAwait, ec));
  }
}

// Cancels the watchdog once every connection of the thread finished.
asio::awaitable<void> Supervise(ThreadCtx& tc, asio::steady_timer& wd) {
  asio::steady_timer t(tc.ioc);
  for (;;) {
    bool any = false;
    for (auto& c : tc.conns) any = any || c->active();
    if (!any) break;
    t.expires_after(std::chrono::milliseconds(20));
    boost::beast::error_code ec;
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

// Fills in the defaults that depend on the target and checks the options; "" when valid.
std::string ResolveOptions(Shared& sh) {
  LoadOptions& o = sh.o;
  std::string err;
  if (!ParseTarget(o.target, sh.t, err)) return err;
  if (o.connections <= 0) o.connections = sh.t.ws ? 4 : 32;
  if (o.batch <= 0) o.batch = sh.t.ws ? 100 : 1;
  if (o.admin_token.empty()) o.admin_token = o.token;
  if (o.threads <= 0) o.threads = int(std::max(1u, std::thread::hardware_concurrency()));
  o.threads = std::min(o.threads, o.connections);
  if (o.workspaces < 1 || o.users < 1) return "--workspaces and --users must be >= 1";
  if (o.batch > 100000) return "--batch too large";
  if (o.mix_text < 0 || o.mix_image < 0 || o.mix_video < 0 ||
      o.mix_text + o.mix_image + o.mix_video <= 0)
    return "--mix weights must be >= 0 with a positive sum";
  if (o.duration_s <= 0) return "--duration must be > 0";
  sh.conns = o.connections;
  if (o.rate > 0) sh.frame_interval_s = double(o.batch) * double(o.connections) / o.rate;
  for (int i = 0; i < o.workspaces; ++i) sh.ws_names.push_back(o.workspace_prefix + std::to_string(i));
  return "";
}

// The token reads are made with (any role may read).
const std::string& ReadToken(const LoadOptions& o) { return o.token.empty() ? o.admin_token : o.token; }

// Creates or raises the workspaces (PUT needs admin); "" on success.
std::string SetUpWorkspaces(const Shared& sh) {
  const LoadOptions& o = sh.o;
  for (auto& w : sh.ws_names) {
    SyncReply r = SyncHttp(sh.t, verb::put, "/v1/workspaces/" + w,
                           "{\"limit\":" + std::to_string(o.setup_limit) + "}", o.admin_token);
    if (r.status == 0) return "cannot reach " + o.target + ": " + r.body;
    if (r.status == 401 || r.status == 403)
      return "setup (PUT /v1/workspaces/" + w + ") answered HTTP " + std::to_string(r.status) +
             ": it needs an admin token (--admin-token/--token) or an open loopback "
             "server; or use --no-setup with existing workspaces";
    if (r.status != 200)
      return "setup PUT /v1/workspaces/" + w + " answered HTTP " + std::to_string(r.status) + " " +
             r.body;
  }
  return "";
}

// The load itself: threads, connections, the clock and the progress lines.
class Runner {
 public:
  explicit Runner(Shared& sh) : sh_(sh), connected_(sh.o.threads), running_(sh.o.threads) {
    const int threads = sh.o.threads;
    for (int i = 0; i < threads; ++i) {
      ctx_.push_back(std::make_unique<ThreadCtx>());
      ctx_.back()->st.debit.assign(sh.ws_names.size(), 0);
    }
    for (int c = 0; c < sh.o.connections; ++c) {
      ThreadCtx& tc = *ctx_[size_t(c % threads)];
      tc.conns.push_back(sh.t.ws ? MakeWsConn(sh, tc.st, tc.ioc, c) : MakeHttpConn(sh, tc.st, tc.ioc, c));
    }
  }

  // Starts the threads; each connects its connections, then waits for the clock to start.
  void Spawn() {
    for (size_t i = 0; i < ctx_.size(); ++i) threads_.emplace_back([this, i] { ThreadMain(*ctx_[i]); });
  }

  // Once every thread connected: sets the schedule and lets them go. "" or the connect error
  // (then the threads end at once).
  std::string StartClock() {
    connected_.wait();
    std::string err;
    for (auto& tc : ctx_)
      if (!tc->connect_error.empty()) {
        abort_ = true;
        err = tc->connect_error;
      }
    sh_.start = Clock::now();
    sh_.deadline = sh_.start + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(sh_.o.duration_s));
    sh_.hard_stop = sh_.deadline + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(sh_.o.drain_timeout_s));
    go_.count_down();
    return err;
  }

  // One progress line a second until every thread ended.
  void ReportProgress(std::ostream& progress) {
    auto last = sh_.start;
    std::unique_lock lk(done_mu_);
    for (;;) {
      auto wake = last + std::chrono::seconds(1);
      if (done_cv_.wait_until(lk, wake, [&] { return running_.load() == 0; })) break;
      auto now = Clock::now();
      double dt = std::chrono::duration<double>(now - last).count();
      last = now;
      std::lock_guard wl(sh_.mu);
      if (sh_.o.progress && !abort_) {
        char line[256];
        std::snprintf(line, sizeof line,
                      "[%5.1fs] %9.0f ops/s  errors %llu  refused %llu  p50 %s  p99 %s  in-flight %lld\n",
                      std::chrono::duration<double>(now - sh_.start).count(),
                      double(sh_.window_ops) / dt, (unsigned long long)sh_.window_errors,
                      (unsigned long long)sh_.window_refused,
                      FmtUs(sh_.window.Percentile(50)).c_str(),
                      FmtUs(sh_.window.Percentile(99)).c_str(),
                      (long long)sh_.inflight_ops.load(std::memory_order_relaxed));
        progress << line << std::flush;
      }
      sh_.window.Reset();
      sh_.window_ops = sh_.window_errors = sh_.window_refused = 0;
    }
  }

  // Joins the threads; returns when the last connection finished (not the teardown after it).
  Clock::time_point Join() {
    for (auto& t : threads_) t.join();
    auto end = sh_.start;
    bool all_finished = true;
    for (auto& tc : ctx_)
      for (auto& c : tc->conns) {
        if (c->finished_at() == Clock::time_point{}) all_finished = false;
        end = std::max(end, c->finished_at());
      }
    if (!all_finished || end == sh_.start) end = Clock::now();
    return end;
  }

  // Adds every thread's totals to `rep` and the per-workspace acknowledged debits to `debit`.
  void Merge(LoadReport& rep, std::vector<int64_t>& debit) const {
    for (auto& tc : ctx_) {
      const ThreadStats& s = tc->st;
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
  }

 private:
  void ThreadMain(ThreadCtx& tc) {
    for (auto& c : tc.conns) {
      std::string e;
      if (!c->Connect(e)) {
        tc.connect_error = e;
        break;
      }
    }
    connected_.count_down();
    go_.wait();
    if (!abort_.load()) {
      for (auto& c : tc.conns) asio::co_spawn(tc.ioc, c->Run(), asio::detached);
      asio::co_spawn(tc.ioc, ProgressTicker(sh_, tc), asio::detached);
      // Watchdog: whatever happens, stop a little after the drain deadline.
      asio::steady_timer wd(tc.ioc);
      wd.expires_at(sh_.hard_stop + std::chrono::seconds(5));
      wd.async_wait([&tc](const boost::beast::error_code& ec) {
        if (!ec) tc.ioc.stop();
      });
      // Run until every connection finished (the watchdog is then cancelled).
      asio::co_spawn(tc.ioc, Supervise(tc, wd), asio::detached);
      tc.ioc.run();
      for (auto& c : tc.conns) c->Finish();
    }
    {
      std::lock_guard lk(done_mu_);
      running_.fetch_sub(1);
    }
    done_cv_.notify_all();
  }

  Shared& sh_;
  std::vector<std::unique_ptr<ThreadCtx>> ctx_;
  std::vector<std::thread> threads_;
  std::latch connected_;
  std::latch go_{1};
  std::atomic<bool> abort_{false};
  std::atomic<int> running_;
  std::mutex done_mu_;
  std::condition_variable done_cv_;
};

// Reads every workspace back and compares with `before` + the acknowledged debits.
void Verify(const Shared& sh, const std::vector<WorkspaceTotals>& before,
            const std::vector<int64_t>& debit, LoadReport& rep) {
  rep.verification_ran = true;
  bool ok = true;
  std::ostringstream msg;
  std::string err;
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
    WorkspaceTotals after;
    if (!ReadWorkspace(sh.t, sh.ws_names[i], ReadToken(sh.o), after, err)) {
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

}  // namespace

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
  const LoadOptions& o = sh.o;
  std::string err = ResolveOptions(sh);
  if (!err.empty()) return usage(err);

  // Setup: create/raise the workspaces, then read the starting point.
  if (o.setup && !(err = SetUpWorkspaces(sh)).empty()) return usage(err);
  std::vector<WorkspaceTotals> before(sh.ws_names.size());
  if (o.verify) {
    for (size_t i = 0; i < sh.ws_names.size(); ++i)
      if (!ReadWorkspace(sh.t, sh.ws_names[i], ReadToken(o), before[i], err))
        return usage(err + (o.setup ? "" : " (with --no-setup the workspaces must exist)"));
  }

  Runner runner(sh);
  runner.Spawn();
  err = runner.StartClock();
  runner.ReportProgress(progress);
  const Clock::time_point end = runner.Join();
  if (!err.empty()) return usage(err);

  std::vector<int64_t> debit(sh.ws_names.size(), 0);
  runner.Merge(rep, debit);
  rep.elapsed_s = std::chrono::duration<double>(end - sh.start).count();
  rep.ops_per_sec = rep.elapsed_s > 0 ? double(rep.ops) / rep.elapsed_s : 0;
  if (!debit.empty()) debit[0] += o.test_extra_expected_debit;
  for (int64_t d : debit) rep.acknowledged_debits += d;

  if (o.verify) Verify(sh, before, debit, rep);
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

}  // namespace genledger::load
