#include "sink/clickhouse_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <charconv>
#include <mutex>

#include <fmt/format.h>

namespace ea {

namespace {

constexpr size_t kMaxResponseBytes = 1 << 20;
constexpr size_t kMaxErrorTextBytes = 600;

size_t collect_response(char* data, size_t size, size_t count, void* user) {
  auto* response = static_cast<std::string*>(user);
  size_t bytes = size * count;
  size_t room = kMaxResponseBytes - std::min(kMaxResponseBytes, response->size());
  response->append(data, std::min(bytes, room));
  return bytes;
}

// "Code: 60, e.displayText() = DB::Exception: Table x doesn't exist., e.what() = DB::Exception"
int exception_code(std::string_view body) {
  size_t at = body.find("Code: ");
  if (at == std::string_view::npos) return 0;
  int code = 0;
  const char* start = body.data() + at + 6;
  std::from_chars(start, body.data() + body.size(), code);
  return code;
}

// One line of the server's text for logs: control characters blanked, length capped.
std::string error_text(std::string_view body) {
  std::string text(body.substr(0, kMaxErrorTextBytes));
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  while (!text.empty() && text.back() == ' ') text.pop_back();
  if (body.size() > kMaxErrorTextBytes) text += "...";
  return text;
}

// RFC 3986 query component: unreserved characters stay, every other byte becomes %XX.
std::string percent_encoded(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

}  // namespace

bool ClickHouseFailure::rows_rejected() const {
  switch (code) {
    case 6:    // CANNOT_PARSE_TEXT
    case 26:   // CANNOT_PARSE_QUOTED_STRING
    case 27:   // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    case 38:   // CANNOT_PARSE_DATE
    case 41:   // CANNOT_PARSE_DATETIME
    case 53:   // TYPE_MISMATCH
    case 69:   // ARGUMENT_OUT_OF_BOUND
    case 70:   // CANNOT_CONVERT_TYPE
    case 72:   // CANNOT_PARSE_NUMBER
    case 117:  // INCORRECT_DATA (also: unknown field, i.e. a table of another shape)
    case 130:  // CANNOT_READ_ARRAY_FROM_TEXT
    case 131:  // TOO_LARGE_STRING_SIZE
    case 190:  // SIZES_OF_ARRAYS_DOESNT_MATCH
    case 321:  // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
      return answered;
    default:
      return false;
  }
}

bool ClickHouseFailure::schema_missing() const {
  return answered && (code == 60 /* UNKNOWN_TABLE */ || code == 81 /* UNKNOWN_DATABASE */);
}

ClickHouseClient::ClickHouseClient(ClickHouseConnection connection) : connection_(std::move(connection)) {}

ClickHouseClient::~ClickHouseClient() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
  if (headers_) curl_slist_free_all(static_cast<curl_slist*>(headers_));
}

std::expected<std::string, ClickHouseFailure> ClickHouseClient::execute(std::string_view query) {
  return post(connection_.url + "/", query);
}

std::expected<std::string, ClickHouseFailure> ClickHouseClient::execute_with_data(std::string_view statement,
                                                                                  std::string_view data) {
  return post(connection_.url + "/?query=" + percent_encoded(statement), data);
}

std::expected<std::string, ClickHouseFailure> ClickHouseClient::post(const std::string& url, std::string_view body) {
  static std::once_flag curl_ready;
  std::call_once(curl_ready, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (!curl_) {
    curl_ = curl_easy_init();
    if (!curl_) return std::unexpected(ClickHouseFailure{.message = "libcurl could not create a handle"});
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: text/plain; charset=UTF-8");
    headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip per batch
    headers_ = headers;
  }
  CURL* curl = static_cast<CURL*>(curl_);
  std::string response;
  char curl_error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(headers_));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_response);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
  long timeout_ms = static_cast<long>(connection_.timeout.count());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout_ms, 5000L));
  if (!connection_.user.empty()) {
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(curl, CURLOPT_USERNAME, connection_.user.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, connection_.password.c_str());
  }
  CURLcode result = curl_easy_perform(curl);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  if (result != CURLE_OK) {
    return std::unexpected(ClickHouseFailure{
        .message = fmt::format("{}: {}", connection_.url, curl_error[0] ? curl_error : curl_easy_strerror(result))});
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    return std::unexpected(ClickHouseFailure{
        .message = fmt::format("{} answered HTTP {}: {}", connection_.url, status, error_text(response)),
        .code = exception_code(response),
        .answered = true});
  }
  return response;
}

}  // namespace ea
