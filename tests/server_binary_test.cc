// The real `genledger` executable: flags, start line, refusal without tokens, SIGHUP reload,
// SIGTERM exit 0. GENLEDGER_BINARY is the built executable's path (set by CMake).
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "http_test_client.h"

#include <filesystem>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using genledger::testing::FreePort;

// One HTTP/1.1 request with Connection: close; returns the whole response ("" if no connect).
std::string Http(uint16_t port, const std::string& method, const std::string& target,
                 const std::string& token = "", const std::string& body = "") {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return "";
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
  if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, size_t(n));
  close(fd);
  return out;
}

struct Proc {
  pid_t pid = -1;
  int out_fd = -1;   // stdout+stderr
};

// Every server started here gets its own fresh data directory (removed at exit), so no test
// writes a WAL into the working directory or sees another's state.
std::string FreshDataDir() {
  static std::vector<std::string> made;
  static struct Cleanup {
    ~Cleanup() {
      for (const auto& d : made) std::filesystem::remove_all(d);
    }
  } cleanup;
  char tmpl[] = "/tmp/genledger-bin-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return "/tmp";
  made.push_back(tmpl);
  return tmpl;
}

// `tunables`: the GLIBC_TUNABLES the server starts with; nullopt leaves it unset.
Proc Spawn(std::vector<std::string> args, std::optional<std::string> tunables = std::nullopt) {
  const bool info_only = !args.empty() && (args[0] == "--help" || args[0] == "--version");
  const bool has_dir = std::find(args.begin(), args.end(), "--data-dir") != args.end();
  if (!info_only && !has_dir) {
    args.push_back("--data-dir");
    args.push_back(FreshDataDir());
  }
  int p[2];
  EXPECT_EQ(pipe(p), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_adddup2(&fa, p[1], 2);
  posix_spawn_file_actions_addclose(&fa, p[0]);
  args.insert(args.begin(), GENLEDGER_BINARY);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).rfind("GLIBC_TUNABLES=", 0) != 0) env.emplace_back(*e);
  }
  if (tunables) env.push_back("GLIBC_TUNABLES=" + *tunables);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  Proc pr;
  EXPECT_EQ(posix_spawn(&pr.pid, GENLEDGER_BINARY, &fa, nullptr, argv.data(), envp.data()), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  pr.out_fd = p[0];
  return pr;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, size_t(n));
  close(fd);
  return out;
}

// An operator log line: "<UTC timestamp> <level letter> <message>" (src/log/log.h).
bool IsLogLine(const std::string& line) {
  return line.size() > 25 && line[4] == '-' && line[10] == 'T' && line[23] == 'Z' && line[24] == ' ';
}

// The next line of output that is not an operator log line (the stdout "listening" line).
std::string ReadLine(int fd) {
  for (;;) {
    std::string line;
    char c;
    bool any = false;
    while (read(fd, &c, 1) == 1) {
      any = true;
      if (c == '\n') break;
      line.push_back(c);
    }
    if (!any || !IsLogLine(line)) return line;
  }
}

int Wait(pid_t pid) {
  int st = 0;
  for (int i = 0; i < 500; ++i) {
    if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  return -1;
}

TEST(ServerBinary, HelpListsEveryFlagAndVersion) {
  Proc p = Spawn({"--help"});
  std::string help = ReadAll(p.out_fd);
  EXPECT_EQ(Wait(p.pid), 0);
  for (const char* flag : {"--listen", "--threads", "--catalog", "--auth-file", "--max-body-bytes",
                           "--header-timeout-ms", "--idle-timeout-ms", "--max-connections",
                           "--max-batch-ops", "--max-ws-inflight", "--data-dir", "--sync",
                           "--sync-interval-ms", "--snapshot-interval", "--recover", "--idempotency-window-ms",
                           "--idempotency-capacity", "--refund-window-ms", "--refund-capacity",
                           "--default-ttl-ms", "--max-ttl-ms", "--max-open-reservations",
                           "--max-workspaces", "--max-users-per-workspace", "--version", "--help"})
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  p = Spawn({"--version"});
  EXPECT_EQ(ReadAll(p.out_fd), std::string("genledger ") + GENLEDGER_VERSION + "\n");
  EXPECT_EQ(Wait(p.pid), 0);
}

TEST(ServerBinary, RefusesNonLoopbackWithoutTokens) {
  unsetenv("GENLEDGER_ADMIN_TOKEN");
  unsetenv("GENLEDGER_GATE_TOKEN");
  unsetenv("GENLEDGER_READ_TOKEN");
  Proc p = Spawn({"--listen", "0.0.0.0:" + std::to_string(FreePort())});
  std::string out = ReadAll(p.out_fd);
  EXPECT_EQ(Wait(p.pid), 2);
  EXPECT_NE(out.find("refusing"), std::string::npos) << out;
  p = Spawn({"--listen", "127.0.0.1:99999"});
  ReadAll(p.out_fd);
  EXPECT_NE(Wait(p.pid), 0);
  p = Spawn({"--catalog", "/nonexistent/catalog.json"});
  ReadAll(p.out_fd);
  EXPECT_NE(Wait(p.pid), 0);
}

TEST(ServerBinary, OpenOnLoopbackThenSigtermExitsZero) {
  uint16_t port = FreePort();
  Proc p = Spawn({"--listen", "127.0.0.1:" + std::to_string(port), "--threads", "2"});
  std::string line = ReadLine(p.out_fd);
  EXPECT_NE(line.find("listening on 127.0.0.1:" + std::to_string(port)), std::string::npos) << line;
  EXPECT_NE(line.find("2 threads"), std::string::npos) << line;
  EXPECT_NE(line.find("OPEN"), std::string::npos) << line;
  std::string r = Http(port, "PUT", "/v1/workspaces/acme", "", R"({"limit":10})");
  EXPECT_EQ(r.substr(0, 12), "HTTP/1.1 200") << r;
  r = Http(port, "POST", "/v1/charge", "", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":3})");
  EXPECT_NE(r.find("\"remaining\":7"), std::string::npos) << r;
  kill(p.pid, SIGTERM);
  EXPECT_EQ(Wait(p.pid), 0);
  ReadAll(p.out_fd);
}

// The start-up report log line ("... I recovered ...").
std::string ReadRecoveryLine(int fd) {
  for (;;) {
    std::string line;
    char c;
    bool any = false;
    while (read(fd, &c, 1) == 1) {
      any = true;
      if (c == '\n') break;
      line.push_back(c);
    }
    if (!any || (IsLogLine(line) && line.find(" I recovered ") != std::string::npos)) return line;
  }
}

TEST(ServerBinary, RunsWithAHugePageHeapUnlessTheOperatorSetsGlibcTunables) {
  const std::string ours = "glibc.malloc.hugetlb=1:glibc.malloc.top_pad=67108864";
  struct Case {
    std::optional<std::string> given;
    std::string expected;
  };
  for (const Case& c : {Case{std::nullopt, ours}, Case{"", ""}, Case{"glibc.malloc.arena_max=2", "glibc.malloc.arena_max=2"}}) {
    uint16_t port = FreePort();
    Proc p = Spawn({"--listen", "127.0.0.1:" + std::to_string(port), "--threads", "1"}, c.given);
    // Printed by the process serving, from its own environment: the re-executed one when unset.
    const std::string line = ReadRecoveryLine(p.out_fd);
    EXPECT_NE(line.find("GLIBC_TUNABLES=" + c.expected + ")"), std::string::npos) << line;
    kill(p.pid, SIGTERM);
    EXPECT_EQ(Wait(p.pid), 0);
    ReadAll(p.out_fd);
  }
}

TEST(ServerBinary, AuthFileReloadedOnSighup) {
  std::string path = ::testing::TempDir() + "/genledger_binary_auth.json";
  { std::ofstream(path) << R"({"tokens":[{"token":"first-token","role":"admin"}]})"; }
  uint16_t port = FreePort();
  setenv("GENLEDGER_READ_TOKEN", "env-read-token", 1);
  Proc p = Spawn({"--listen", "127.0.0.1:" + std::to_string(port), "--auth-file", path});
  unsetenv("GENLEDGER_READ_TOKEN");
  std::string line = ReadLine(p.out_fd);
  EXPECT_NE(line.find("bearer tokens (2)"), std::string::npos) << line;
  EXPECT_EQ(line.find("first-token"), std::string::npos);
  EXPECT_EQ(Http(port, "GET", "/v1/catalog").substr(0, 12), "HTTP/1.1 401");
  EXPECT_EQ(Http(port, "GET", "/v1/catalog", "first-token").substr(0, 12), "HTTP/1.1 200");
  EXPECT_EQ(Http(port, "GET", "/v1/catalog", "env-read-token").substr(0, 12), "HTTP/1.1 200");
  EXPECT_EQ(Http(port, "PUT", "/v1/workspaces/a", "env-read-token", "{}").substr(0, 12), "HTTP/1.1 403");
  EXPECT_EQ(Http(port, "GET", "/healthz").substr(0, 12), "HTTP/1.1 200");
  { std::ofstream(path) << R"({"tokens":[{"token":"second-token","role":"gate"}]})"; }
  kill(p.pid, SIGHUP);
  bool switched = false;
  for (int i = 0; i < 100 && !switched; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    switched = Http(port, "GET", "/v1/catalog", "second-token").substr(0, 12) == "HTTP/1.1 200";
  }
  EXPECT_TRUE(switched);
  EXPECT_EQ(Http(port, "GET", "/v1/catalog", "first-token").substr(0, 12), "HTTP/1.1 401");
  kill(p.pid, SIGINT);
  EXPECT_EQ(Wait(p.pid), 0);
  std::string log = ReadAll(p.out_fd);
  EXPECT_EQ(log.find("first-token"), std::string::npos);
  EXPECT_EQ(log.find("second-token"), std::string::npos);
  std::remove(path.c_str());
}

// A client cannot crash the server by committing, with a usage, a hold whose model the catalog
// of a restarted server no longer has (it read the catalog at index UINT32_MAX): the hold kept
// its price, so the commit is priced as at reserve time. Through the shutdown snapshot (SIGTERM)
// and through WAL replay (kill -9).
TEST(ServerBinary, CommitAfterARestartWithoutTheModelIsPricedAsReserved) {
  const std::string dir = FreshDataDir();
  auto write = [&](const std::string& name, const std::string& items) {
    std::ofstream(dir + "/" + name) << R"({"items":[)" << items << "]}";
    return dir + "/" + name;
  };
  const std::string text =
      R"({"id":"txt","name":"Text","category":"text","unit":"message","rate":"1","regions":["global"],"aliases":[]})";
  const std::string before = write("before.json", text + R"(,{"id":"vid","name":"Video","category":"video","unit":"second","rate":"2.5","regions":["global"],"aliases":[]})");
  const std::string after = write("after.json", text);
  for (int sig : {SIGTERM, SIGKILL}) {
    const std::string data = dir + "/data-" + std::to_string(sig);
    std::filesystem::create_directories(data);
    const uint16_t port = FreePort();
    const std::vector<std::string> common = {"--listen", "127.0.0.1:" + std::to_string(port), "--data-dir", data};
    auto args = [&](const std::string& catalog) {
      std::vector<std::string> a = common;
      a.push_back("--catalog");
      a.push_back(catalog);
      return a;
    };
    Proc p = Spawn(args(before));
    ReadLine(p.out_fd);
    ASSERT_EQ(Http(port, "PUT", "/v1/workspaces/acme", "", R"({"limit":100})").substr(0, 12), "HTTP/1.1 200");
    std::string r = Http(port, "POST", "/v1/reserve", "", R"({"workspace":"acme","user":"u","model":"vid","seconds":10})");
    ASSERT_NE(r.find("\"held\":25"), std::string::npos) << r;
    const size_t at = r.find("\"rs_");
    ASSERT_NE(at, std::string::npos) << r;
    const std::string rs = r.substr(at + 1, r.find('"', at + 1) - at - 1);
    kill(p.pid, sig);
    Wait(p.pid);
    ReadAll(p.out_fd);

    p = Spawn(args(after));
    ReadLine(p.out_fd);
    r = Http(port, "POST", "/v1/commit", "", R"({"reservation":")" + rs + R"(","seconds":4})");
    EXPECT_EQ(r.substr(0, 12), "HTTP/1.1 200") << sig << ": " << r;
    EXPECT_NE(r.find("\"cost\":10"), std::string::npos) << r;
    r = Http(port, "GET", "/v1/workspaces/acme");
    EXPECT_NE(r.find("\"used\":10,\"reserved\":0"), std::string::npos) << r;
    kill(p.pid, SIGTERM);
    EXPECT_EQ(Wait(p.pid), 0) << sig;
    ReadAll(p.out_fd);
  }
}

// The live catalog through the real binary: SIGHUP re-reads --catalog FILE (a bad file changes
// nothing), the data directory's catalog wins at a restart without --catalog, and a differing
// --catalog at a restart is applied as the next version (docs/pricing.md).
TEST(ServerBinary, SighupReloadsTheCatalogAndTheDataDirectoryIsAuthoritative) {
  const std::string dir = FreshDataDir();
  const std::string data = dir + "/data", file = dir + "/catalog.json";
  std::filesystem::create_directories(data);
  auto write = [&](const char* rate) {
    std::ofstream(file) << R"({"items":[{"id":"txt","name":"Text","category":"text","unit":"message","rate":")" << rate
                        << R"(","regions":["global"]}]})";
  };
  const uint16_t port = FreePort();
  auto start = [&](bool with_catalog) {
    std::vector<std::string> a = {"--listen", "127.0.0.1:" + std::to_string(port), "--data-dir", data};
    if (with_catalog) {
      a.push_back("--catalog");
      a.push_back(file);
    }
    Proc p = Spawn(a);
    ReadLine(p.out_fd);
    return p;
  };
  auto catalog = [&] { return Http(port, "GET", "/v1/catalog"); };
  auto cost = [&] {
    const std::string r = Http(port, "POST", "/v1/charge", "", R"({"workspace":"acme","user":"u","model":"txt","quantity":1})");
    const size_t at = r.find("\"cost\":");
    return at == std::string::npos ? std::string("none: ") + r : r.substr(at + 7, r.find(',', at) - at - 7);
  };
  auto wait_for = [&](const std::string& what) {
    for (int i = 0; i < 250; ++i) {
      if (catalog().find(what) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  };

  write("1");
  Proc p = start(true);
  EXPECT_NE(catalog().find(R"({"version":1,"items":[)"), std::string::npos) << catalog();
  ASSERT_EQ(Http(port, "PUT", "/v1/workspaces/acme", "", R"({"limit":1000})").substr(0, 12), "HTTP/1.1 200");
  EXPECT_EQ(cost(), "1");
  write("3");
  kill(p.pid, SIGHUP);
  EXPECT_TRUE(wait_for(R"("version":2)")) << catalog();
  EXPECT_EQ(cost(), "3");
  std::ofstream(file) << "{ not json";
  kill(p.pid, SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_NE(catalog().find(R"("version":2)"), std::string::npos) << "a bad file changes nothing: " << catalog();
  EXPECT_EQ(cost(), "3");
  kill(p.pid, SIGTERM);
  EXPECT_EQ(Wait(p.pid), 0);
  const std::string log = ReadAll(p.out_fd);
  EXPECT_NE(log.find("catalog reloaded from " + file + ": version 2"), std::string::npos) << log;
  EXPECT_NE(log.find("catalog reload failed"), std::string::npos) << log;

  // No --catalog: the data directory's catalog, version 2, whatever the built-in one is.
  p = start(false);
  EXPECT_NE(catalog().find(R"({"version":2,"items":[)"), std::string::npos) << catalog();
  EXPECT_NE(catalog().find(R"("rate":"3")"), std::string::npos) << catalog();
  EXPECT_EQ(cost(), "3");
  kill(p.pid, SIGKILL);   // the WAL alone must carry it too
  Wait(p.pid);
  ReadAll(p.out_fd);

  // A --catalog that differs: applied as version 3 and logged.
  write("2");
  p = start(true);
  EXPECT_NE(catalog().find(R"("version":3)"), std::string::npos) << catalog();
  EXPECT_EQ(cost(), "2");
  kill(p.pid, SIGTERM);
  EXPECT_EQ(Wait(p.pid), 0);
  ReadAll(p.out_fd);
}

}  // namespace
