// genledger-load command line (docs/load.md).
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "load/load.h"

namespace genledger::load {

namespace {
bool ParseMix(const std::string& s, LoadOptions& o, std::string& err) {
  int text = 0, image = 0, video = 0;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t eq = item.find('=');
    if (eq == std::string::npos) {
      err = "--mix: expected name=weight, got '" + item + "'";
      return false;
    }
    std::string name = item.substr(0, eq), val = item.substr(eq + 1);
    int w = -1;
    try {
      size_t used = 0;
      w = std::stoi(val, &used);
      if (used != val.size()) w = -1;
    } catch (...) {
      w = -1;
    }
    if (w < 0) {
      err = "--mix: weight of '" + name + "' must be a non-negative integer, got '" + val + "'";
      return false;
    }
    if (name == "text") text = w;
    else if (name == "image") image = w;
    else if (name == "video") video = w;
    else {
      err = "--mix: unknown category '" + name + "' (text, image, video)";
      return false;
    }
  }
  if (text + image + video <= 0) {
    err = "--mix: the weights must have a positive sum";
    return false;
  }
  o.mix_text = text;
  o.mix_image = image;
  o.mix_video = video;
  return true;
}
}  // namespace

int LoadMain(int argc, char** argv) {
  LoadOptions o;
  std::string mix = "text=90,image=5,video=5", op = "charge";
  bool json = false, no_setup = false, no_verify = false, quiet = false;

  CLI::App app{
      "genledger-load: drive load against a genledger server, measure latency (from each "
      "op's intended send time), then verify that the ledger debited exactly what was "
      "acknowledged. Exit: 0 ok, 1 verification failure or error rate too high, 2 usage or "
      "connection error."};
  app.set_version_flag("--version", std::string("genledger-load ") + GENLEDGER_VERSION);
  app.add_option("--target", o.target,
                 "ws://HOST:PORT[/v1/ws] (WebSocket frames of --batch ops) or http://HOST:PORT "
                 "(keep-alive POSTs: /v1/charge etc. with --batch 1, /v1/batch otherwise)")
      ->capture_default_str();
  app.add_option("-c,--connections", o.connections, "Connections (default: ws 4, http 32)")
      ->check(CLI::Range(1, 100000));
  app.add_option("-b,--batch", o.batch,
                 "Ops per WebSocket frame / per /v1/batch request (default: ws 100, http 1)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--pipeline", o.pipeline, "WebSocket frames in flight per connection")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("-d,--duration", o.duration_s, "Seconds of load (new ops stop after it)")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 86400.0));
  app.add_option("-r,--rate", o.rate,
                 "Open loop: total new ops/s over all connections, latency measured from each "
                 "op's intended send time (default 0: closed loop, as fast as possible)")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--workspaces", o.workspaces, "Workspaces to spread ops over")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("--users", o.users, "Users per workspace (u-0 .. u-N-1)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  app.add_option("--workspace-prefix", o.workspace_prefix, "Workspace ids are PREFIX0, PREFIX1, ...")
      ->capture_default_str();
  app.add_option("--mix", mix,
                 "Category weights: text (gpt-4o, quantity 1), image (stable-diffusion, "
                 "quantity 1), video (veo-3, 4 seconds)")
      ->capture_default_str();
  app.add_option("--op", op,
                 "charge | reserve-commit (reserve, then commit the whole hold) | "
                 "reserve-release")
      ->capture_default_str()
      ->check(CLI::IsMember({"charge", "reserve-commit", "reserve-release"}));
  app.add_option("--token", o.token, "Bearer token for the load (gate or admin role)")
      ->envname("GENLEDGER_LOAD_TOKEN");
  app.add_option("--admin-token", o.admin_token,
                 "Bearer token for workspace setup (admin role; default: --token)")
      ->envname("GENLEDGER_LOAD_ADMIN_TOKEN");
  app.add_flag("--no-setup", no_setup,
               "Do not create/raise the workspaces (they must exist); verification compares "
               "deltas read before and after the run");
  app.add_option("--setup-limit", o.setup_limit,
                 "Limit set on each workspace at setup (small values exercise 402 refusals, "
                 "which are expected and not errors)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(0), int64_t(1'000'000'000'000'000)));
  app.add_flag("--no-verify", no_verify, "Skip the read-back verification");
  app.add_option("-t,--threads", o.threads, "Client threads, one io_context each (default: cores)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--max-error-rate", o.max_error_rate,
                 "Fraction of ops allowed to fail with non-402 errors before exit 1")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--drain-timeout", o.drain_timeout_s,
                 "Seconds allowed after --duration for in-flight ops to finish")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  app.add_flag("--json", json, "Print one JSON summary object as the last line of stdout");
  app.add_flag("-q,--quiet", quiet, "No per-second progress on stderr");
  app.add_option("--test-extra-debit", o.test_extra_expected_debit,
                 "")  // test hook: the verifier must then fail
      ->group("");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  std::string err;
  if (!ParseMix(mix, o, err)) {
    std::fprintf(stderr, "genledger-load: %s\n", err.c_str());
    return 2;
  }
  o.op = op == "charge" ? OpMode::kCharge
         : op == "reserve-commit" ? OpMode::kReserveCommit : OpMode::kReserveRelease;
  o.setup = !no_setup;
  o.verify = !no_verify;
  o.progress = !quiet;
  std::signal(SIGPIPE, SIG_IGN);

  LoadReport r = RunLoad(o, std::cerr);
  if (r.usage_error) {
    std::fprintf(stderr, "genledger-load: %s\n", r.error.c_str());
    if (json) std::cout << ReportJson(r) << std::endl;
    return 2;
  }
  PrintReport(r, std::cout, json);
  if (r.exit_code == 1 && r.verification_ran && !r.verified)
    std::fprintf(stderr, "genledger-load: VERIFICATION FAILED\n%s", r.verify_message.c_str());
  return r.exit_code;
}

}  // namespace genledger::load
