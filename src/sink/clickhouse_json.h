// JSON pieces for ClickHouse's JSONEachRow input. Every string leaves as valid UTF-8: invalid
// byte sequences become U+FFFD, so hostile bytes can neither break a row nor poison the column
// for ClickHouse's JSON/UTF-8 functions.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace ea {

// Appends "text" (with the quotes), JSON-escaped, invalid UTF-8 replaced by U+FFFD.
void append_clickhouse_string(std::string_view text, std::string& out);
// Appends a Float64 as ClickHouse parses it back exactly: shortest round-trip digits for finite
// values, "nan" / "inf" / "-inf" (quoted) for the rest, which JSON itself cannot express.
void append_clickhouse_double(double value, std::string& out);
void append_clickhouse_uint(uint64_t value, std::string& out);
void append_clickhouse_int(int64_t value, std::string& out);

}  // namespace ea
