// Times as `ebpf-agent query` takes and prints them.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ea::tsdb {

// "now", "-1h" / "now-1h" (a duration back from now), RFC 3339 ("2025-05-01T10:00:00Z",
// "2025-05-01T12:00:00.5+02:00", "2025-05-01"), or unix time: seconds (fraction allowed), or ms,
// us or ns when the number is that large. Returns ns since the epoch.
Result<int64_t> parse_time_argument(std::string_view text, int64_t now_ns);

// RFC 3339 in UTC with `fraction_digits` (0, 3, 6 or 9) digits: "2025-05-01T10:00:00.123Z".
std::string format_rfc3339(int64_t time_ns, int fraction_digits);

}  // namespace ea::tsdb
