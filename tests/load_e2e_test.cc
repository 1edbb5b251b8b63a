// genledger-load end to end: the real genledger binary on an ephemeral loopback port, load over
// WebSocket and HTTP through the library entry point (RunLoad) and through the genledger-load
// binary; verification must pass, and must fail when told about one extra acknowledged debit.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "load/load.h"

#ifndef GENLEDGER_BINARY
#error "GENLEDGER_BINARY must be defined"
#endif
#ifndef GENLEDGER_LOAD_BINARY
#error "GENLEDGER_LOAD_BINARY must be defined"
#endif

using namespace genledger::load;

namespace {

// The server child: started with --listen 127.0.0.1:0; the port is read from its start line.
class ServerProcess {
 public:
  // tokens: "admin:gate" puts GENLEDGER_ADMIN_TOKEN / GENLEDGER_GATE_TOKEN in the server's
  // environment; empty: an open loopback server.
  bool Start(std::string& err, const std::string& admin = "", const std::string& gate = "") {
    // A durable server (--data-dir/--sync in its --help) gets a private temporary data dir,
    // in its default sync mode.
    std::string help = Capture(std::string(GENLEDGER_BINARY) + " --help");
    std::vector<std::string> args = {GENLEDGER_BINARY, "--listen", "127.0.0.1:0", "--threads", "2"};
    if (help.find("--data-dir") != std::string::npos) {
      char tmpl[] = "/tmp/genledger-load-e2e-XXXXXX";
      if (!mkdtemp(tmpl)) {
        err = "mkdtemp failed";
        return false;
      }
      data_dir_ = tmpl;
      args.push_back("--data-dir");
      args.push_back(data_dir_);
    }
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
      err = "pipe2 failed";
      return false;
    }
    pid_ = fork();
    if (pid_ < 0) {
      err = "fork failed";
      return false;
    }
    if (pid_ == 0) {
      dup2(out[1], 1);
      unsetenv("GENLEDGER_ADMIN_TOKEN");
      unsetenv("GENLEDGER_GATE_TOKEN");
      unsetenv("GENLEDGER_READ_TOKEN");
      if (!admin.empty()) setenv("GENLEDGER_ADMIN_TOKEN", admin.c_str(), 1);
      if (!gate.empty()) setenv("GENLEDGER_GATE_TOKEN", gate.c_str(), 1);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(GENLEDGER_BINARY, argv.data());
      _exit(127);
    }
    close(out[1]);
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (line.find('\n') == std::string::npos) {
      int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(
                         deadline - std::chrono::steady_clock::now())
                         .count());
      if (left <= 0) break;
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, left) <= 0) break;
      char buf[256];
      ssize_t n = read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, size_t(n));
    }
    close(out[0]);
    // "genledger 0.1.0 listening on 127.0.0.1:PORT, ..."
    size_t at = line.find("127.0.0.1:");
    if (at == std::string::npos) {
      err = "no start line from the server: '" + line + "'";
      return false;
    }
    port_ = std::stoi(line.substr(at + 10));
    return port_ > 0;
  }
  static std::string Capture(const std::string& cmd) {
    std::string out;
    FILE* f = popen((cmd + " 2>&1").c_str(), "r");
    if (!f) return out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    pclose(f);
    return out;
  }
  void Stop() {
    Kill();
    if (!data_dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(data_dir_, ec);
      data_dir_.clear();
    }
  }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 200; ++i) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  ~ServerProcess() { Stop(); }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string data_dir_;
};

ServerProcess* g_server = nullptr;

class LoadE2e : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    signal(SIGPIPE, SIG_IGN);
    g_server = new ServerProcess;
    std::string err;
    if (!g_server->Start(err)) {
      delete g_server;
      g_server = nullptr;
      FAIL() << err;
    }
  }
  static void TearDownTestSuite() {
    delete g_server;
    g_server = nullptr;
  }
  void SetUp() override { ASSERT_NE(g_server, nullptr) << "server did not start"; }

  static std::string Ws() { return "ws://127.0.0.1:" + std::to_string(g_server->port()) + "/v1/ws"; }
  static std::string Http() { return "http://127.0.0.1:" + std::to_string(g_server->port()); }

  static LoadOptions Base(const std::string& target, const std::string& prefix) {
    LoadOptions o;
    o.target = target;
    o.duration_s = 1.0;
    o.threads = 2;
    o.workspaces = 4;
    o.users = 50;
    o.workspace_prefix = prefix;
    o.progress = false;
    o.drain_timeout_s = 20;
    return o;
  }
  static void ExpectClean(const LoadReport& r) {
    EXPECT_FALSE(r.usage_error) << r.error;
    EXPECT_GT(r.ops, 0u);
    EXPECT_EQ(r.unexpected_errors, 0u);
    EXPECT_EQ(r.unknown_outcome, 0u);
    for (auto& [k, v] : r.errors)
      if (k != "insufficient_generations" && k != "user_limit_exceeded")
        ADD_FAILURE() << "error " << k << " x" << v;
    EXPECT_TRUE(r.verification_ran);
    EXPECT_TRUE(r.verified) << r.verify_message;
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.all.count(), r.ops);
  }
};

TEST_F(LoadE2e, WebSocketChargesVerify) {
  LoadOptions o = Base(Ws(), "e2e-ws-");
  o.duration_s = 2.0;
  o.connections = 2;
  o.batch = 50;
  o.pipeline = 16;
  std::ostringstream progress;
  o.progress = true;
  LoadReport r = RunLoad(o, progress);
  ExpectClean(r);
  EXPECT_GT(r.count_by_kind[kOpCharge], 0u);
  EXPECT_NE(progress.str().find("ops/s"), std::string::npos);
  int64_t total = 0;
  for (auto& c : r.checks) total += c.expected_debit;
  EXPECT_GT(total, 0);
}

TEST_F(LoadE2e, HttpSingleOpsVerify) {
  LoadOptions o = Base(Http(), "e2e-http-");
  o.duration_s = 2.0;
  o.connections = 4;
  LoadReport r = RunLoad(o, std::cerr);
  ExpectClean(r);
  EXPECT_EQ(r.frames, r.ops);   // one op per request
}

TEST_F(LoadE2e, HttpBatchReserveCommitVerify) {
  LoadOptions o = Base(Http(), "e2e-httpb-");
  o.connections = 2;
  o.batch = 20;
  o.op = OpMode::kReserveCommit;
  LoadReport r = RunLoad(o, std::cerr);
  ExpectClean(r);
  EXPECT_GT(r.count_by_kind[kOpReserve], 0u);
  EXPECT_EQ(r.count_by_kind[kOpReserve], r.count_by_kind[kOpCommit]);
  for (auto& c : r.checks) EXPECT_EQ(c.reserved_after, 0) << c.workspace;
}

TEST_F(LoadE2e, WebSocketReserveReleaseOpenLoop) {
  LoadOptions o = Base(Ws(), "e2e-wsrr-");
  o.connections = 2;
  o.batch = 10;
  o.rate = 4000;
  o.op = OpMode::kReserveRelease;
  LoadReport r = RunLoad(o, std::cerr);
  ExpectClean(r);
  EXPECT_EQ(r.count_by_kind[kOpReserve], r.count_by_kind[kOpRelease]);
  // Open loop: 4000 new ops/s for 1 s (+ as many releases), within scheduling slack.
  EXPECT_GE(r.count_by_kind[kOpReserve], 3000u);
  EXPECT_LE(r.count_by_kind[kOpReserve], 4000u);
  for (auto& c : r.checks) {
    EXPECT_EQ(c.expected_debit, 0);
    EXPECT_EQ(c.used_after, c.used_before);
    EXPECT_EQ(c.reserved_after, 0);
  }
}

TEST_F(LoadE2e, RefusalsAreNotErrors) {
  LoadOptions o = Base(Ws(), "e2e-402-");
  o.workspaces = 1;
  o.setup_limit = 500;
  o.connections = 1;
  o.batch = 10;
  LoadReport r = RunLoad(o, std::cerr);
  ExpectClean(r);
  EXPECT_GT(r.refused_402, 0u);
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_EQ(r.checks[0].used_after, 500);
  EXPECT_EQ(r.checks[0].expected_debit, 500);
}

TEST_F(LoadE2e, NoSetupComparesDeltas) {
  // First run creates the workspaces and leaves debits; the second must verify by deltas.
  LoadOptions o = Base(Ws(), "e2e-delta-");
  o.duration_s = 0.5;
  ExpectClean(RunLoad(o, std::cerr));
  o.setup = false;
  LoadReport r = RunLoad(o, std::cerr);
  ExpectClean(r);
  bool nonzero_before = false;
  for (auto& c : r.checks) nonzero_before = nonzero_before || c.used_before > 0;
  EXPECT_TRUE(nonzero_before);
  // --no-setup against workspaces that do not exist: a usage error (exit 2).
  o.workspace_prefix = "e2e-missing-";
  LoadReport m = RunLoad(o, std::cerr);
  EXPECT_TRUE(m.usage_error);
  EXPECT_EQ(m.exit_code, 2);
}

TEST_F(LoadE2e, WrongExpectationFailsVerification) {
  LoadOptions o = Base(Ws(), "e2e-wrong-");
  o.test_extra_expected_debit = 1;   // the verifier is told of one debit the server never made
  LoadReport r = RunLoad(o, std::cerr);
  EXPECT_GT(r.ops, 0u);
  EXPECT_EQ(r.unexpected_errors, 0u);
  EXPECT_TRUE(r.verification_ran);
  EXPECT_FALSE(r.verified);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.verify_message.find("MISMATCH e2e-wrong-0"), std::string::npos) << r.verify_message;
  EXPECT_NE(r.verify_message.find("difference -1"), std::string::npos) << r.verify_message;
}

TEST_F(LoadE2e, UnreachableServerIsAUsageError) {
  LoadOptions o = Base("ws://127.0.0.1:1/v1/ws", "e2e-none-");
  LoadReport r = RunLoad(o, std::cerr);
  EXPECT_TRUE(r.usage_error);
  EXPECT_EQ(r.exit_code, 2);
}

TEST_F(LoadE2e, TokensSetupNeedsAdminAndBadTokenIsUsageError) {
  ServerProcess secured;
  std::string err;
  ASSERT_TRUE(secured.Start(err, "admin-token-e2e", "gate-token-e2e")) << err;
  std::string ws = "ws://127.0.0.1:" + std::to_string(secured.port()) + "/v1/ws";
  std::string http = "http://127.0.0.1:" + std::to_string(secured.port());
  LoadOptions o = Base(ws, "e2e-auth-");
  o.duration_s = 0.5;
  o.token = "gate-token-e2e";
  LoadReport r = RunLoad(o, std::cerr);   // setup with a gate token: 403
  EXPECT_TRUE(r.usage_error);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.error.find("admin"), std::string::npos) << r.error;
  o.admin_token = "admin-token-e2e";
  ExpectClean(RunLoad(o, std::cerr));
  LoadOptions h = o;
  h.target = http;
  ExpectClean(RunLoad(h, std::cerr));
  LoadOptions bad = o;                    // WebSocket upgrade refused: usage error
  bad.token = "nope";
  bad.setup = false;
  bad.verify = false;
  LoadReport b = RunLoad(bad, std::cerr);
  EXPECT_TRUE(b.usage_error);
  EXPECT_EQ(b.exit_code, 2);
  bad.target = http;                      // HTTP: every op 401, exit 2
  LoadReport c = RunLoad(bad, std::cerr);
  EXPECT_TRUE(c.auth_refused);
  EXPECT_EQ(c.exit_code, 2);
  EXPECT_EQ(c.ok_ops, 0u);
}

// The binary: exit codes and the --json last line.
std::string RunBinary(const std::string& args, int& rc) {
  std::string cmd = std::string(GENLEDGER_LOAD_BINARY) + " " + args + " 2>/dev/null";
  FILE* f = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  int st = pclose(f);
  rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

TEST_F(LoadE2e, BinaryJsonLastLineAndExitCodes) {
  int rc = -1;
  std::string out = RunBinary("--target " + Ws() +
                                  " --duration 1 --connections 2 --batch 20 --threads 1 "
                                  "--workspaces 2 --workspace-prefix e2e-bin- --json",
                              rc);
  EXPECT_EQ(rc, 0) << out;
  ASSERT_FALSE(out.empty());
  std::string last = out.substr(out.rfind('\n', out.size() - 2) + 1);
  EXPECT_EQ(last.rfind("{\"ops\":", 0), 0u) << last;
  for (const char* k : {"\"ops_per_sec\":", "\"errors\":0,", "\"p50_us\":", "\"p99_us\":",
                        "\"p999_us\":", "\"max_us\":", "\"verified\":true"})
    EXPECT_NE(last.find(k), std::string::npos) << k << " in " << last;

  RunBinary("--target " + Ws() + " --duration 0.5 --workspace-prefix e2e-bin2- "
            "--test-extra-debit 5 --json",
            rc);
  EXPECT_EQ(rc, 1);
  RunBinary("--batch 0", rc);
  EXPECT_EQ(rc, 2);
  RunBinary("--target ftp://x", rc);
  EXPECT_EQ(rc, 2);
  RunBinary("--mix text=1,audio=2", rc);
  EXPECT_EQ(rc, 2);
  RunBinary("--target ws://127.0.0.1:1/v1/ws --duration 0.5", rc);
  EXPECT_EQ(rc, 2);
  out = RunBinary("--help", rc);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find("--pipeline"), std::string::npos);
}

}  // namespace
