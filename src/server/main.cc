// genledger: the generation ledger server.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "genledger/catalog.h"
#include "genledger/durability.h"
#include "webhook/service.h"
#include "genledger/ledger.h"
#include "log/log.h"
#include "server/auth.h"
#include "server/heap_tunables.h"
#include "server/server.h"

using namespace genledger;
using namespace genledger::server;

namespace {
int g_signal_pipe[2] = {-1, -1};
extern "C" void OnSignal(int sig) {
  int saved = errno;
  unsigned char c = static_cast<unsigned char>(sig);
  ssize_t r = write(g_signal_pipe[1], &c, 1);
  (void)r;
  errno = saved;
}

// Recovering a large ledger is mostly page faults with 4 KiB pages: 1 M workspaces take ~230,000,
// half of recovery time on the VM we measure on (docs/durability.md, "Recovery time"). glibc
// reads its tunables only when a process starts, so set them and execute this binary again,
// once: afterwards GLIBC_TUNABLES is set. An operator's own GLIBC_TUNABLES (even empty) wins.
void ReexecWithHeapTunables(char** argv) {
  if (std::getenv("GLIBC_TUNABLES") != nullptr) return;
  if (setenv("GLIBC_TUNABLES", kHeapTunables, 1) != 0) return;
  execv("/proc/self/exe", argv);
  log::Warn("could not re-execute with GLIBC_TUNABLES={} ({}); using glibc's defaults", kHeapTunables,
            std::strerror(errno));
  unsetenv("GLIBC_TUNABLES");
}

// SIGHUP: reads the --catalog file again; a catalog that differs from the one in force becomes
// its next version (logged, durable before the log line says so). A file that cannot be read or
// parsed is logged and changes nothing (docs/pricing.md, "Changing the catalog while running").
void ReloadCatalog(Ledger& ledger, Durability& durability, const std::string& file) {
  Result<std::shared_ptr<const Catalog>> c = Catalog::FromFile(file);
  if (!c.ok()) {
    log::Error("catalog reload failed, keeping version {}: {}", ledger.CatalogVersion(), c.status().ToString());
    return;
  }
  uint64_t version = 0;
  if ((*c)->ToJson() == ledger.CurrentCatalog(&version)->ToJson()) {
    log::Info("catalog reload: {} is the catalog in force (version {}); nothing changed", file, version);
    return;
  }
  Result<uint64_t> v = ledger.ReplaceCatalog(*c);
  Status durable = v.ok() ? durability.WaitDurable(durability.Ticket()) : v.status();
  if (!durable.ok()) {
    log::Error("catalog reload from {} failed: {}", file, durable.ToString());
    return;
  }
  log::Info("catalog reloaded from {}: version {}, {} items", file, *v, (*c)->items().size());
}
}  // namespace

int main(int argc, char** argv) {
  ReexecWithHeapTunables(argv);
  ServerOptions opt;
  std::string listen = "127.0.0.1:8080";
  std::string catalog_file, auth_file;
  unsigned hw = std::thread::hardware_concurrency();
  opt.threads = hw ? int(hw) : 1;

  CLI::App app{"genledger: may this workspace spend N generations?"};
  app.set_version_flag("--version", std::string("genledger ") + GENLEDGER_VERSION);
  app.add_option("--listen", listen, "Address to listen on, host:port or [v6]:port")
      ->capture_default_str();
  bool print_routes = false;
  app.add_flag("--routes", print_routes, "Print every HTTP route as 'METHOD PATTERN' and exit (docs/openapi.yaml)");
  app.add_option("--threads", opt.threads, "I/O threads (default: core count)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--stream-threads", opt.stream_threads,
                 "I/O threads of their own for Server-Sent Events streams and the streams' poll "
                 "(0: they share the gate's threads)")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  app.add_option("--catalog", catalog_file, "Pricing catalog JSON file (default: built-in)");
  app.add_option("--auth-file", auth_file,
                 "Tokens file {\"tokens\":[{\"token\":..,\"role\":\"admin|gate|read\"}]}, "
                 "reloaded on SIGHUP");
  app.add_option("--max-body-bytes", opt.max_body_bytes,
                 "Largest HTTP body / WebSocket message")
      ->capture_default_str()
      ->check(CLI::Range(size_t(64), size_t(1) << 30));
  app.add_option("--header-timeout-ms", opt.header_timeout_ms,
                 "Time allowed to receive a request's headers")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t(1), uint64_t(3'600'000)));
  app.add_option("--idle-timeout-ms", opt.idle_timeout_ms,
                 "Keep-alive / body / WebSocket idle timeout")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t(1), uint64_t(86'400'000)));
  app.add_option("--max-connections", opt.max_connections,
                 "Open connections beyond which new ones get 503")
      ->capture_default_str()
      ->check(CLI::Range(size_t(1), size_t(10'000'000)));
  app.add_option("--max-batch-ops", opt.max_batch_ops,
                 "Ops per /v1/batch request or WebSocket frame")
      ->capture_default_str()
      ->check(CLI::Range(size_t(1), size_t(1'000'000)));
  app.add_option("--max-ws-inflight", opt.max_ws_inflight,
                 "Reply frames queued per WebSocket before reading pauses")
      ->capture_default_str()
      ->check(CLI::Range(size_t(1), size_t(1'000'000)));
  app.add_option("--max-ws-queued-bytes", opt.max_ws_queued_bytes,
                 "Reply bytes queued per WebSocket before reading pauses")
      ->capture_default_str()
      ->check(CLI::Range(size_t(4096), size_t(1) << 30));
  app.add_option("--max-subscriptions-per-connection", opt.max_subscriptions_per_connection,
                 "Live-stream subscriptions one connection may hold (WebSocket subscribe ops; an SSE "
                 "stream is one); more are 429 too_many_subscriptions")
      ->capture_default_str()
      ->check(CLI::Range(size_t(1), size_t(1'000'000)));
  app.add_option("--max-subscribers", opt.max_subscribers,
                 "Live-stream subscriptions of all connections together; more are 503 "
                 "too_many_subscribers")
      ->capture_default_str()
      ->check(CLI::Range(size_t(1), size_t(100'000'000)));
  app.add_option("--max-stream-queued-bytes", opt.max_stream_queued_bytes,
                 "Pushed stream bytes one subscriber may have waiting (not yet taken by its socket); "
                 "past it the subscriber is disconnected (WebSocket 1008, SSE stream ended)")
      ->capture_default_str()
      ->check(CLI::Range(size_t(4096), size_t(1) << 30));
  app.add_option("--sse-keepalive-ms", opt.sse_keepalive_ms,
                 "Period of the ': keep-alive' comment on Server-Sent Events streams")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t(10), uint64_t(3'600'000)));
  app.add_option("--reply-deadline-ms", opt.reply_deadline_ms,
                 "A reply waiting this long for the WAL is answered 503 unavailable (outcome unknown: "
                 "retry with the same id)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t(1), uint64_t(3'600'000)));
  app.add_option("--health-unsynced-ms", opt.health_unsynced_ms,
                 "/healthz answers 503 degraded while a WAL round has been unsynced this long")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t(1), uint64_t(3'600'000)));
  app.add_option("--allow-origin", opt.allowed_origins,
                 "An Origin (scheme://host[:port]) whose pages may call the API, besides the server's "
                 "own; repeatable. Requests with any other Origin header get 403 forbidden_origin");
  std::string metrics_listen;
  app.add_option("--metrics-listen", metrics_listen,
                 "Serve /metrics (and /healthz) on this host:port instead of --listen's");
  app.add_option("--metrics-token", opt.metrics_token,
                 "/metrics then needs 'Authorization: Bearer <this>' (or any token with a role). "
                 "Without it, /metrics is open on a loopback address and needs a read token otherwise");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warn, error or off (stderr)")
      ->capture_default_str()
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}));

  DurabilityOptions dur;
  std::string sync = "group", recover = "strict";
  app.add_option("--data-dir", dur.data_dir, "Directory of the write-ahead log and snapshots")
      ->capture_default_str();
  app.add_option("--sync", sync,
                 "When a mutation is answered: group (after fdatasync; default), periodic (after "
                 "write, fdatasync every --sync-interval-ms), none (tests and benchmarks only)")
      ->capture_default_str()
      ->check(CLI::IsMember({"group", "periodic", "none"}));
  app.add_option("--sync-interval-ms", dur.sync_interval_ms, "fdatasync period with --sync periodic")
      ->capture_default_str()
      ->check(CLI::Range(uint32_t(1), uint32_t(60'000)));
  app.add_option("--slow-fsync-ms", dur.slow_sync_log_ms,
                 "Log a warning for an fdatasync taking at least this long (0: never)")
      ->capture_default_str()
      ->check(CLI::Range(uint32_t(0), uint32_t(3'600'000)));
  app.add_option("--snapshot-interval", dur.snapshot_interval_s,
                 "Seconds between snapshots (0: no periodic snapshots, none at shutdown either)")
      ->capture_default_str()
      ->check(CLI::Range(uint32_t(0), uint32_t(7 * 24 * 3600)));
  app.add_option("--recover", recover,
                 "strict (default): refuse to start on a corrupted log; salvage: keep the valid "
                 "prefix and set aside the rest (reported)")
      ->capture_default_str()
      ->check(CLI::IsMember({"strict", "salvage"}));

  webhook::ServiceOptions wopt;
  app.add_option("--webhook-ca", wopt.ca_file,
                 "PEM file of the CA(s) webhook receivers' certificates must chain to (default: the "
                 "system's CA store)");
  app.add_option("--webhook-outbox-bytes", wopt.outbox_bytes,
                 "Ceiling of the events kept for webhooks; past it the oldest undelivered are dropped")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t(1) << 16, uint64_t(1) << 40));

  LedgerOptions lopt;
  app.add_option("--idempotency-window-ms", lopt.idempotency_window_ms,
                 "How long a charge/reserve id is remembered for retries")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t(1), uint64_t(30) * 24 * 3600 * 1000));
  app.add_option("--idempotency-capacity", lopt.idempotency_capacity,
                 "Most ids remembered in all: a global budget any workspace may use nearly all of (past it, the oldest id of the inserting shard is forgotten early, counted)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t(256), uint64_t(1) << 32));
  app.add_option("--refund-window-ms", lopt.refund_window_ms, "How long a charge can be refunded")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t(1), uint64_t(30) * 24 * 3600 * 1000));
  app.add_option("--refund-capacity", lopt.refund_capacity,
                 "Most recent charges kept refundable in all: a global budget shared like --idempotency-capacity")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t(256), uint64_t(1) << 34));
  app.add_option("--usage-history-bytes", lopt.usage_history_bytes,
                 "Memory for usage history (GET /v1/workspaces/{ws}/usage) in all workspaces; past it, new "
                 "(user, model, day) rows are counted in their period's \"(other)\" row, totals exact "
                 "(docs/ledger.md, \"Usage history\"). 0: history off")
      ->capture_default_str();
  app.add_option("--default-ttl-ms", lopt.default_ttl_ms, "Reservation TTL when a request gives none")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t(1), uint64_t(24) * 3600 * 1000));
  app.add_option("--max-ttl-ms", lopt.max_ttl_ms, "Longest reservation TTL accepted")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t(1), uint64_t(7) * 24 * 3600 * 1000));
  app.add_option("--max-open-reservations", lopt.max_open_reservations,
                 "Open holds at most (split over 256 shards)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t(256), uint64_t(1) << 34));
  app.add_option("--max-workspaces", lopt.max_workspaces, "Workspaces at most")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t(1), uint64_t(1) << 34));
  app.add_option("--max-users-per-workspace", lopt.max_users_per_workspace, "Users per workspace at most")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t(1), uint64_t(1) << 32));
  app.add_option("--max-users", lopt.max_users,
                 "Users at most, all workspaces together (past it, creating a user is refused: 429)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t(1), uint64_t(1) << 36));
  CLI11_PARSE(app, argc, argv);
  if (print_routes) {
    for (const std::string& r : Api::RouteList()) std::printf("%s\n", r.c_str());
    return 0;
  }
  log::Level level = log::Level::kInfo;
  log::ParseLevel(log_level, &level);
  log::SetLevel(level);
  if (lopt.default_ttl_ms > lopt.max_ttl_ms) {
    log::Error("--default-ttl-ms must not exceed --max-ttl-ms");
    return 2;
  }
  dur.sync = *ParseSyncMode(sync);
  dur.salvage = recover == "salvage";

  if (Status st = ParseListen(listen, opt.host, opt.port); !st.ok()) {
    log::Error("--listen {}: {}", listen, st.message());
    return 2;
  }
  if (!metrics_listen.empty()) {
    opt.metrics_listen = true;
    if (Status st = ParseListen(metrics_listen, opt.metrics_host, opt.metrics_port); !st.ok()) {
      log::Error("--metrics-listen {}: {}", metrics_listen, st.message());
      return 2;
    }
  }
  for (std::string& o : opt.allowed_origins) {
    while (!o.empty() && o.back() == '/') o.pop_back();
    if (o.find("://") == std::string::npos) {
      log::Error("--allow-origin {}: expected scheme://host[:port]", o);
      return 2;
    }
  }

  std::shared_ptr<const Catalog> catalog;
  if (catalog_file.empty()) {
    catalog = Catalog::Default();
  } else {
    auto c = Catalog::FromFile(catalog_file);
    if (!c.ok()) {
      log::Error("{}", c.status().ToString());
      return 2;
    }
    catalog = *c;
  }

  auto auth = std::make_shared<Auth>();
  Status st = auth->Init(auth_file);
  if (!st.ok()) {
    log::Error("{}", st.ToString());
    return 2;
  }
  bool loopback = IsLoopbackHost(opt.host);
  if (auth->open() && !loopback) {
    log::Error("refusing to listen on non-loopback {} without tokens (use --auth-file or GENLEDGER_*_TOKEN)",
               opt.host);
    return 2;
  }
  if (opt.metrics_listen && auth->open() && opt.metrics_token.empty() && !IsLoopbackHost(opt.metrics_host)) {
    log::Error("refusing to serve /metrics on non-loopback {} without --metrics-token or tokens", opt.metrics_host);
    return 2;
  }

  // Signals: the handler only writes the signal number to a pipe (async-signal-safe); the
  // main thread reads the pipe. Works whichever thread the kernel picks for delivery.
  if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) {
    log::Error("pipe2: {}", std::strerror(errno));
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaction(sig, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  lopt.event_outbox_bytes = wopt.outbox_bytes;   // the ceiling lives in the ledger's outboxes
  auto ledger = std::make_shared<Ledger>(catalog, lopt);
  RecoveryReport report;
  auto durability = Durability::Open(*ledger, dur, &report);
  if (!durability.ok()) {
    log::Error("cannot recover {}: {}", dur.data_dir, durability.status().ToString());
    if (durability.code() == Code::kCorruption && !dur.salvage) {
      log::Error("inspect it with genledger-inspect {}; --recover=salvage keeps the valid prefix", dur.data_dir);
    }
    return 1;
  }
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  log::Info("{} (data dir {}, --sync {}, GLIBC_TUNABLES={})", report.Summary(), dur.data_dir, sync,
            tunables != nullptr ? tunables : "");
  if (dur.sync == SyncMode::kNone) {
    log::Warn("--sync none: acknowledged changes are lost on a power cut; for tests and benchmarks only");
  }
  // The data directory's catalog is authoritative; a --catalog that differs is its next version.
  Result<std::string> adopted = AdoptStartupCatalog(*ledger, **durability, catalog_file.empty() ? nullptr : catalog);
  if (!adopted.ok()) {
    log::Error("cannot settle the catalog: {}", adopted.status().ToString());
    return 1;
  }
  log::Info("catalog: {}", *adopted);
  auto webhooks = webhook::Service::Create(*ledger, durability->get(), wopt);
  if (!webhooks.ok()) {
    log::Error("{}", webhooks.status().ToString());
    return 1;
  }
  Server server(opt, ledger, auth, nullptr, durability->get());
  server.api().SetWebhooks(webhooks->get());
  (*webhooks)->Start();   // its own thread: delivery never runs on the I/O threads
  st = server.Start();
  if (!st.ok()) {
    log::Error("{}", st.ToString());
    return 1;
  }
  std::string shown = opt.host.find(':') != std::string::npos ? "[" + opt.host + "]" : opt.host;
  if (auth->open())
    std::printf("genledger %s listening on %s:%u, %d threads, auth: OPEN (no tokens; loopback only)\n",
                GENLEDGER_VERSION, shown.c_str(), unsigned(server.port()), opt.threads);
  else
    std::printf("genledger %s listening on %s:%u, %d threads, auth: bearer tokens (%zu)\n",
                GENLEDGER_VERSION, shown.c_str(), unsigned(server.port()), opt.threads,
                auth->token_count());
  std::fflush(stdout);
  log::Info("started: genledger {} on {}:{}{}, {} I/O threads, auth {}", GENLEDGER_VERSION, shown, server.port(),
            opt.metrics_listen ? ", /metrics on " + opt.metrics_host + ":" + std::to_string(server.metrics_port()) : "",
            opt.threads, auth->open() ? "open (loopback only)" : std::to_string(auth->token_count()) + " tokens");

  for (;;) {
    unsigned char c = 0;
    ssize_t n = read(g_signal_pipe[0], &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n != 1) break;
    int sig = c;
    if (sig == SIGHUP) {
      (void)server.ReloadAuth();   // logs the outcome itself
      if (!catalog_file.empty()) ReloadCatalog(*ledger, **durability, catalog_file);
      continue;
    }
    log::Info("signal {}: stopping", sig);
    break;
  }
  server.Stop();
  server.Wait();
  (*webhooks)->Stop();   // requests in flight are abandoned; their cursors did not move
  // Last WAL round (every in-flight change made durable), then the shutdown snapshot.
  durability->reset();
  log::Info("stopped");
  return 0;
}
