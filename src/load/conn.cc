// genledger-load: what a connection sends and how its replies are accounted (conn.h).
#include "load/conn.h"

#include <algorithm>
#include <charconv>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>

namespace genledger::load {

namespace asio = boost::asio;

namespace {

// Model fragments per category (costs come from the server's reply, never assumed).
constexpr std::string_view kFragText = "\"model\":\"gpt-4o\",\"quantity\":1";
constexpr std::string_view kFragImage = "\"model\":\"stable-diffusion\",\"quantity\":1";
constexpr std::string_view kFragVideo = "\"model\":\"veo-3\",\"seconds\":4";

void AppendU64(std::string& s, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  s.append(buf, r.ptr);
}

}  // namespace

Conn::Conn(Shared& sh, ThreadStats& st, asio::io_context& ioc, int index)
    : sh_(sh), st_(st), ioc_(ioc), space_(ioc), index_(index), rate_timer_(ioc) {
  rng_ = 0x9E3779B97F4A7C15ull * uint64_t(index + 1) ^ 0xD1B54A32D192ED03ull;
  if (rng_ == 0) rng_ = 1;
  body_.reserve(size_t(sh.o.batch) * 128 + 64);
  mix_total_ = sh.o.mix_text + sh.o.mix_image + sh.o.mix_video;
}

void Conn::Finish() {
  for (auto& f : inflight_) {
    st_.unknown += f.ops.size();
    st_.unexpected += f.ops.size();
    st_.Error(lost_reason_, f.ops.size());
  }
  inflight_.clear();
}

Conn::Next Conn::Decide(Clock::time_point now, size_t max_inflight, Clock::time_point& due) {
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

int Conn::Build(Clock::time_point intended, bool array_form, bool batch_form) {
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

void Conn::Account(const ScannedResult& r, const OpMeta& m, uint64_t expected_seq, bool check_seq) {
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

void Conn::CompleteFront(std::string_view reply, int http_status, bool single, Clock::time_point now) {
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

asio::awaitable<void> Conn::WaitSpace() {
  boost::beast::error_code ec;
  space_.expires_at(std::min(sh_.hard_stop, Clock::now() + std::chrono::seconds(1)));
  co_await space_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<void> Conn::WaitUntil(Clock::time_point due) {
  boost::beast::error_code ec;
  rate_timer_.expires_at(due);
  co_await rate_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

}  // namespace genledger::load
