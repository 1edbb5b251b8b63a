// Request body parsing (protocol.h): bodies through a streaming Boost.JSON parser into OpRequest,
// each field typed and range-checked as it is read (the typing: protocol_values.cc). The field
// table, the per-operation field checks, ids, query parameters and error values are in
// protocol_fields.cc.

#include "server/protocol.h"

#include <boost/json/basic_parser_impl.hpp>
#include <cstring>

#include "server/protocol_values.h"

namespace genledger::server {

namespace json = boost::json;

using body::AssignField;
using body::AssignSubField;
using body::KindName;
using body::SetError;
using body::ShortName;
using body::TypeError;
using body::ValKind;
using body::Value;

namespace {

// Streaming handler: builds OpRequests directly, keeping every number's exact text.
class BodyHandler {
 public:
  static constexpr std::size_t max_object_size = 256;
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = 4096;
  static constexpr std::size_t max_string_size = 1 << 20;

  BodyHandler(BodyShape shape, size_t max_ops, ParsedBody& out)
      : shape_(shape), max_ops_(max_ops), out_(out) {}

  bool saw_ops() const { return saw_ops_; }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }

  bool on_object_begin(json::error_code& ec) {
    ++depth_;
    if (depth_ == 1) {
      if (shape_ == BodyShape::kBatch) {
        op_depth_ = 3;
        return true;
      }
      op_depth_ = 1;
      return BeginOp(ec);
    }
    if (skip_depth_) return true;
    if (InOp() && depth_ == op_depth_ + 1) {
      if (BeginNested(Cur())) return true;
      TypeError(Cur(), key_, "a scalar", ValKind::kObject);
      skip_depth_ = depth_;
      return true;
    }
    if (InOp() && depth_ == op_depth_ + 2) {   // inside "period" / "rollover"
      TypeError(Cur(), NestedName(), "a scalar", ValKind::kObject);
      skip_depth_ = depth_;
      return true;
    }
    if (depth_ == op_depth_ && InOpsArray()) return BeginOp(ec);
    if (shape_ == BodyShape::kBatch && depth_ == 2) {
      if (key_ != "ops")
        return Fail(ec, 400, "invalid_argument", "unknown field '" + ShortName(key_) + "'");
      return Fail(ec, 400, "invalid_argument", "field 'ops' must be an array, not an object");
    }
    return true;
  }

  bool on_object_end(std::size_t, json::error_code&) {
    if (skip_depth_ == depth_) {
      skip_depth_ = 0;
    } else if (nested_ != 0 && InOp() && depth_ == op_depth_ + 1) {
      if (nested_ == kFPeriod && (Cur().sub_present & (kSInterval | kSAnchor)) == 0)
        SetError(Cur(), 400, "invalid_argument", "field 'period' needs 'interval' or 'anchor'");
      if (nested_ == kFRollover && (Cur().sub_present & kSMax) == 0)
        SetError(Cur(), 400, "invalid_argument", "field 'rollover' needs 'max' (0 or null turns rollover off)");
      nested_ = 0;
    }
    --depth_;
    return true;
  }

  bool on_array_begin(json::error_code& ec) {
    ++depth_;
    if (depth_ == 1) {
      if (shape_ == BodyShape::kFrame) {
        out_.is_array = true;
        op_depth_ = 2;
        in_ops_array_ = true;
        return true;
      }
      return Fail(ec, 400, "bad_json", "the body must be a JSON object");
    }
    if (skip_depth_) return true;
    if (shape_ == BodyShape::kBatch && depth_ == 2) {
      if (key_ != "ops")
        return Fail(ec, 400, "invalid_argument", "unknown field '" + ShortName(key_) + "'");
      if (saw_ops_) return Fail(ec, 400, "invalid_argument", "duplicate field 'ops'");
      saw_ops_ = true;
      in_ops_array_ = true;
      return true;
    }
    if (InOp() && depth_ == op_depth_ + 1) {
      TypeError(Cur(), key_, "a scalar", ValKind::kArray);
      skip_depth_ = depth_;
      return true;
    }
    if (InOp() && depth_ == op_depth_ + 2) {   // inside "period" / "rollover"
      TypeError(Cur(), NestedName(), "a scalar", ValKind::kArray);
      skip_depth_ = depth_;
      return true;
    }
    if (in_ops_array_ && depth_ == op_depth_)
      return Fail(ec, 400, "invalid_argument", "each op must be a JSON object, not an array");
    return true;
  }

  bool on_array_end(std::size_t, json::error_code&) {
    if (skip_depth_ == depth_) skip_depth_ = 0;
    if (in_ops_array_ && depth_ == op_depth_ - 1) in_ops_array_ = false;
    --depth_;
    return true;
  }

  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key_part_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    if (key_part_.empty()) {
      key_.assign(s.data(), s.size());
    } else {
      key_part_.append(s.data(), s.size());
      key_.swap(key_part_);
      key_part_.clear();
    }
    return true;
  }

  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    str_.append(s.data(), s.size());
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code& ec) {
    std::string_view v;
    if (str_.empty()) {
      v = std::string_view(s.data(), s.size());
    } else {
      str_.append(s.data(), s.size());
      v = str_;
    }
    bool ok = Scalar(ValKind::kString, v, ec);
    str_.clear();
    return ok;
  }

  bool on_number_part(json::string_view s, json::error_code&) {
    num_.append(s.data(), s.size());
    return true;
  }
  bool Number(json::string_view s, json::error_code& ec) {
    std::string_view v;
    if (num_.empty()) {
      v = std::string_view(s.data(), s.size());
    } else {
      num_.append(s.data(), s.size());
      v = num_;
    }
    bool ok = Scalar(ValKind::kNumber, v, ec);
    num_.clear();
    return ok;
  }
  bool on_int64(int64_t, json::string_view s, json::error_code& ec) { return Number(s, ec); }
  bool on_uint64(uint64_t, json::string_view s, json::error_code& ec) { return Number(s, ec); }
  bool on_double(double, json::string_view s, json::error_code& ec) { return Number(s, ec); }
  bool on_bool(bool, json::error_code& ec) { return Scalar(ValKind::kBool, {}, ec); }
  bool on_null(json::error_code& ec) { return Scalar(ValKind::kNull, {}, ec); }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  bool InOp() const { return op_open_ && depth_ >= op_depth_; }
  bool InOpsArray() const { return in_ops_array_; }
  OpRequest& Cur() { return out_.ops.back(); }

  bool Fail(json::error_code& ec, int http, std::string_view code, std::string msg) {
    out_.error = WireError::Make(http, code, std::move(msg));
    ec = make_error_code(boost::system::errc::invalid_argument);
    return false;
  }

  // An object value of an op field: "period" and "rollover" are objects whose members are
  // read by AssignSubField; anything else is not (false).
  bool BeginNested(OpRequest& r) {
    const uint32_t bit = FieldBitOf(key_);
    if (bit != kFPeriod && bit != kFRollover) return false;
    if (r.present & bit) {
      SetError(r, 400, "invalid_argument", "duplicate field '" + key_ + "'");
      skip_depth_ = depth_;
      return true;
    }
    r.present |= bit;
    if (bit == kFRollover) r.rollover = RolloverSpec{};   // "periods" defaults to 1
    nested_ = bit;
    return true;
  }
  std::string NestedName() const { return std::string(FieldName(nested_)) + "." + ShortName(key_); }

  bool BeginOp(json::error_code& ec) {
    if (out_.ops.size() >= max_ops_)
      return Fail(ec, 413, "too_large",
                  "too many ops in one request (at most " + std::to_string(max_ops_) + ")");
    out_.ops.emplace_back();
    op_open_ = true;
    return true;
  }

  bool Scalar(ValKind kind, std::string_view text, json::error_code& ec) {
    if (depth_ == 0) {
      return Fail(ec, 400, "bad_json",
                  shape_ == BodyShape::kFrame ? "a frame must be a JSON object or array"
                                              : "the body must be a JSON object");
    }
    if (skip_depth_) return true;
    if (InOp() && depth_ == op_depth_) {
      AssignField(Cur(), key_, Value{kind, text});
      return true;
    }
    if (InOp() && depth_ == op_depth_ + 1 && nested_ != 0) {
      AssignSubField(Cur(), nested_, key_, Value{kind, text});
      return true;
    }
    if (shape_ == BodyShape::kBatch && depth_ == 1) {
      if (key_ == "ops")
        return Fail(ec, 400, "invalid_argument",
                    "field 'ops' must be an array, not " + std::string(KindName(kind)));
      return Fail(ec, 400, "invalid_argument", "unknown field '" + ShortName(key_) + "'");
    }
    if (in_ops_array_ && depth_ == op_depth_ - 1)
      return Fail(ec, 400, "invalid_argument",
                  "each op must be a JSON object, not " + std::string(KindName(kind)));
    return true;
  }

  BodyShape shape_;
  size_t max_ops_;
  ParsedBody& out_;
  int depth_ = 0;
  int op_depth_ = 1;
  int skip_depth_ = 0;
  bool op_open_ = false;
  bool in_ops_array_ = false;
  bool saw_ops_ = false;
  uint32_t nested_ = 0;   // kFPeriod / kFRollover while inside that object, else 0
  std::string key_, key_part_, str_, num_;
};

}  // namespace

void ParseBody(std::string_view text, BodyShape shape, size_t max_ops, ParsedBody& out,
               bool allow_empty) {
  out.error = {};
  out.is_array = false;
  out.ops.clear();
  bool blank = true;
  for (char c : text)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      blank = false;
      break;
    }
  if (blank) {
    if (allow_empty && shape == BodyShape::kObject) {
      out.ops.emplace_back();
      return;
    }
    out.error = WireError::Make(400, "bad_json", "empty body: a JSON object is required");
    return;
  }
  json::parse_options opt;
  opt.max_depth = 16;
  json::basic_parser<BodyHandler> p(opt, shape, max_ops, out);
  json::error_code ec;
  size_t n = p.write_some(false, text.data(), text.size(), ec);
  if (!out.error.ok()) {
    out.ops.clear();
    return;
  }
  if (ec) {
    out.ops.clear();
    out.error = WireError::Make(400, "bad_json", "malformed JSON: " + ec.message());
    return;
  }
  if (n != text.size()) {
    out.ops.clear();
    out.error = WireError::Make(400, "bad_json", "malformed JSON: extra data after the value");
    return;
  }
  if (shape == BodyShape::kBatch && !p.handler().saw_ops()) {
    out.ops.clear();
    out.error = WireError::Make(400, "invalid_argument", "missing field 'ops'");
  }
}

}  // namespace genledger::server
