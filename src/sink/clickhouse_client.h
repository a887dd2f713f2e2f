// ClickHouse's HTTP interface through libcurl: one keep-alive connection, used by one thread.
#pragma once
#include <chrono>
#include <expected>
#include <string>
#include <string_view>

namespace ea {

struct ClickHouseConnection {
  std::string url;  // http(s)://host:port[/path], no credentials, no query string
  std::string user;  // empty: the server's default user, no authentication header
  std::string password;
  std::chrono::milliseconds timeout{10'000};  // per request
};

struct ClickHouseFailure {
  std::string message;   // libcurl's error, or the HTTP status with ClickHouse's exception text
  int code = 0;          // ClickHouse's exception code ("Code: 60, ..."), 0 when none
  bool answered = false; // the server answered (with an error) rather than being unreachable

  // The server refused the rows themselves (cannot parse, wrong sizes, ...): sending them again
  // cannot succeed.
  bool rows_rejected() const;
  // The database or table is gone (dropped behind our back): create it again, then retry.
  bool schema_missing() const;
};

class ClickHouseClient {
 public:
  explicit ClickHouseClient(ClickHouseConnection connection);
  ~ClickHouseClient();
  ClickHouseClient(const ClickHouseClient&) = delete;
  ClickHouseClient& operator=(const ClickHouseClient&) = delete;

  // Runs `query` (sent as the POST body); returns the response body.
  std::expected<std::string, ClickHouseFailure> execute(std::string_view query);
  // Runs `statement` (in the URL) with `data` as its input (the POST body): INSERT ... FORMAT X.
  std::expected<std::string, ClickHouseFailure> execute_with_data(std::string_view statement, std::string_view data);

 private:
  std::expected<std::string, ClickHouseFailure> post(const std::string& url, std::string_view body);
  ClickHouseConnection connection_;
  void* curl_ = nullptr;  // CURL*, created on first use
  void* headers_ = nullptr;  // curl_slist*
};

}  // namespace ea
