// genledger: the generation ledger server.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <unistd.h>
#include <cstdio>
#include <thread>

#include "genledger/catalog.h"
#include "genledger/ledger.h"
#include "server/auth.h"
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
}  // namespace

int main(int argc, char** argv) {
  ServerOptions opt;
  std::string listen = "127.0.0.1:8080";
  std::string catalog_file, auth_file;
  unsigned hw = std::thread::hardware_concurrency();
  opt.threads = hw ? int(hw) : 1;

  CLI::App app{"genledger: may this workspace spend N generations?"};
  app.set_version_flag("--version", std::string("genledger ") + GENLEDGER_VERSION);
  app.add_option("--listen", listen, "Address to listen on, host:port or [v6]:port")
      ->capture_default_str();
  app.add_option("--threads", opt.threads, "I/O threads (default: core count)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
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
  CLI11_PARSE(app, argc, argv);

  Status st = ParseListen(listen, opt.host, opt.port);
  if (!st.ok()) {
    std::fprintf(stderr, "genledger: %s\n", std::string(st.message()).c_str());
    return 2;
  }

  std::shared_ptr<const Catalog> catalog;
  if (catalog_file.empty()) {
    catalog = Catalog::Default();
  } else {
    auto c = Catalog::FromFile(catalog_file);
    if (!c.ok()) {
      std::fprintf(stderr, "genledger: %s\n", c.status().ToString().c_str());
      return 2;
    }
    catalog = *c;
  }

  auto auth = std::make_shared<Auth>();
  st = auth->Init(auth_file);
  if (!st.ok()) {
    std::fprintf(stderr, "genledger: %s\n", st.ToString().c_str());
    return 2;
  }
  bool loopback = IsLoopbackHost(opt.host);
  if (auth->open() && !loopback) {
    std::fprintf(stderr,
                 "genledger: refusing to listen on non-loopback %s without tokens "
                 "(use --auth-file or GENLEDGER_*_TOKEN)\n",
                 opt.host.c_str());
    return 2;
  }

  // Signals: the handler only writes the signal number to a pipe (async-signal-safe); the
  // main thread reads the pipe. Works whichever thread the kernel picks for delivery.
  if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) {
    std::perror("genledger: pipe2");
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaction(sig, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  auto ledger = std::make_shared<Ledger>(catalog);
  Server server(opt, ledger, auth);
  st = server.Start();
  if (!st.ok()) {
    std::fprintf(stderr, "genledger: %s\n", st.ToString().c_str());
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

  for (;;) {
    unsigned char c = 0;
    ssize_t n = read(g_signal_pipe[0], &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n != 1) break;
    int sig = c;
    if (sig == SIGHUP) {
      Status r = auth->Reload();
      if (r.ok())
        std::fprintf(stderr, "genledger: SIGHUP: auth reloaded, %zu tokens\n", auth->token_count());
      else
        std::fprintf(stderr, "genledger: SIGHUP: auth reload failed, keeping old tokens: %s\n",
                     r.ToString().c_str());
      continue;
    }
    std::fprintf(stderr, "genledger: signal %d: stopping\n", sig);
    break;
  }
  server.Stop();
  server.Wait();
  return 0;
}
