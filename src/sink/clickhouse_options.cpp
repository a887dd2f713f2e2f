#include "sink/clickhouse_options.h"

#include <fstream>
#include <sstream>

#include "sink/clickhouse_schema.h"

namespace ea {

namespace {

// http(s)://host[:port][/path]: credentials belong in user=/password= (they would otherwise show
// in `ebpf-agent list`), and the query string is ours to build.
Result<std::string> check_url(std::string_view url, std::string_view text) {
  std::string_view rest = url;
  if (rest.starts_with("http://"))
    rest.remove_prefix(7);
  else if (rest.starts_with("https://"))
    rest.remove_prefix(8);
  else
    return failf("output '{}': the ClickHouse URL must start with http:// or https:// ({})", text, kClickHouseUsage);
  std::string_view authority = rest.substr(0, rest.find('/'));
  if (authority.empty()) return failf("output '{}': the ClickHouse URL has no host ({})", text, kClickHouseUsage);
  if (authority.find('@') != std::string_view::npos)
    return failf("output '{}': put credentials in user= and password= (or password_file=), not in the URL", text);
  for (char c : url) {
    if (c == '?' || c == '#')
      return failf("output '{}': the ClickHouse URL must not have a query string or fragment", text);
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return failf("output '{}': the ClickHouse URL contains a space or control character", text);
  }
  std::string clean(url);
  while (clean.ends_with('/')) clean.pop_back();
  return clean;
}

Result<std::string> read_password_file(const std::string& path, std::string_view text) {
  std::ifstream file(path);
  if (!file) return failf("output '{}': cannot read password_file '{}'", text, path);
  std::stringstream content;
  content << file.rdbuf();
  std::string password = content.str();
  while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) password.pop_back();
  return password;
}

}  // namespace

Result<ClickHouseOptions> parse_clickhouse_options(const OutputDescription& output) {
  if (auto checked = output.check_options({"database", "user", "password", "password_file", "batch_records", "flush",
                                           "queue_max", "queue_bytes", "timeout", "retention"},
                                          kClickHouseUsage);
      !checked)
    return std::unexpected(checked.error());
  if (output.target.empty())
    return failf("output '{}': clickhouse needs the server's HTTP URL ({})", output.text, kClickHouseUsage);
  ClickHouseOptions options;
  auto url = check_url(output.target, output.text);
  if (!url) return std::unexpected(url.error());
  options.connection.url = *url;

  options.database = output.option("database", options.database);
  if (auto valid = check_clickhouse_identifier(options.database, "database"); !valid)
    return std::unexpected(with_context(valid.error(), fmt::format("output '{}'", output.text)));

  options.connection.user = output.option("user", "");
  if (output.options.contains("password") && output.options.contains("password_file"))
    return failf("output '{}': give password= or password_file=, not both", output.text);
  if (output.options.contains("password_file")) {
    auto password = read_password_file(output.option("password_file", ""), output.text);
    if (!password) return std::unexpected(password.error());
    options.connection.password = std::move(*password);
  } else {
    options.connection.password = output.option("password", "");
  }
  if (options.connection.user.empty() && !options.connection.password.empty())
    return failf("output '{}': a password needs user= too", output.text);

  auto batch = output.size_option("batch_records", options.batch_records);
  if (!batch) return std::unexpected(batch.error());
  // ClickHouse applies an INSERT atomically up to max_insert_block_size (1048576) rows.
  if (*batch < 1 || *batch > 1'000'000)
    return failf("output '{}': batch_records must be between 1 and 1000000", output.text);
  options.batch_records = *batch;

  auto flush = output.duration_option("flush", options.flush);
  if (!flush) return std::unexpected(flush.error());
  if (flush->count() < 10) return failf("output '{}': flush must be at least 10ms", output.text);
  options.flush = *flush;

  auto queue_max = output.size_option("queue_max", options.queue_max);
  if (!queue_max) return std::unexpected(queue_max.error());
  if (*queue_max < 1) return failf("output '{}': queue_max must be at least 1", output.text);
  options.queue_max = *queue_max;

  auto queue_bytes = output.size_option("queue_bytes", options.queue_bytes);
  if (!queue_bytes) return std::unexpected(queue_bytes.error());
  if (*queue_bytes < 4096) return failf("output '{}': queue_bytes must be at least 4K", output.text);
  options.queue_bytes = *queue_bytes;

  auto timeout = output.duration_option("timeout", options.connection.timeout);
  if (!timeout) return std::unexpected(timeout.error());
  if (timeout->count() < 100) return failf("output '{}': timeout must be at least 100ms", output.text);
  options.connection.timeout = *timeout;

  auto retention = output.duration_option("retention", options.retention);
  if (!retention) return std::unexpected(retention.error());
  if (retention->count() != 0 && *retention < std::chrono::hours(24))
    return failf("output '{}': retention is kept in whole days: give at least 1d (or 0 to keep everything)",
                 output.text);
  options.retention = *retention;
  return options;
}

}  // namespace ea
