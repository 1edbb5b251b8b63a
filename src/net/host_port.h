// "host:port" and "[v6addr]:port" as given on command lines (--listen, --metrics-listen, the load
// generator's --target). One parser for every such flag; it checks the shape and the port, not
// whether the host is an address (callers that need one resolve or parse it themselves).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "genledger/status.h"

namespace genledger::net {

// Splits `text` into host (brackets of an IPv6 literal removed) and port (decimal, 0-65535).
// Without a ":port", `default_port` is used if given, else it is an error.
// Errors: kInvalidArgument naming what is wrong (empty host, missing or bad port).
Status SplitHostPort(std::string_view text, std::string* host, uint16_t* port,
                     std::optional<uint16_t> default_port = std::nullopt);

}  // namespace genledger::net
