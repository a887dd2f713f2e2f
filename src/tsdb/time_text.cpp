#include "tsdb/time_text.h"

#include <charconv>
#include <cmath>
#include <ctime>

#include <fmt/format.h>

#include "core/units.h"

namespace ea::tsdb {

namespace {

constexpr std::string_view kTimeForms = "now, -1h, now-30m, 2025-05-01T10:00:00Z, 2025-05-01, or unix seconds";

bool read_digits(std::string_view text, size_t& pos, size_t count, int& value) {
  if (pos + count > text.size()) return false;
  value = 0;
  for (size_t i = 0; i < count; ++i) {
    char c = text[pos + i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  pos += count;
  return true;
}

// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm), valid for all years here.
int64_t days_from_civil(int64_t year, unsigned month, unsigned day) {
  year -= month <= 2;
  int64_t era = (year >= 0 ? year : year - 399) / 400;
  auto yoe = static_cast<unsigned>(year - era * 400);
  unsigned doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

Result<int64_t> parse_rfc3339(std::string_view text) {
  auto bad = [&] { return failf("'{}' is not a time (use {})", text, kTimeForms); };
  size_t pos = 0;
  int year, month, day, hour = 0, minute = 0, second = 0;
  if (!read_digits(text, pos, 4, year) || pos >= text.size() || text[pos++] != '-' || !read_digits(text, pos, 2, month) ||
      pos >= text.size() || text[pos++] != '-' || !read_digits(text, pos, 2, day))
    return bad();
  if (month < 1 || month > 12 || day < 1 || day > 31) return bad();
  int64_t fraction_ns = 0;
  int64_t offset_s = 0;
  if (pos < text.size()) {
    if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') return bad();
    ++pos;
    if (!read_digits(text, pos, 2, hour) || pos >= text.size() || text[pos++] != ':' || !read_digits(text, pos, 2, minute))
      return bad();
    if (pos < text.size() && text[pos] == ':') {
      ++pos;
      if (!read_digits(text, pos, 2, second)) return bad();
    }
    if (hour > 23 || minute > 59 || second > 60) return bad();
    if (pos < text.size() && text[pos] == '.') {
      ++pos;
      int64_t scale = 100'000'000;
      size_t digits = 0;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        if (digits++ < 9) {
          fraction_ns += (text[pos] - '0') * scale;
          scale /= 10;
        }
        ++pos;
      }
      if (digits == 0) return bad();
    }
    if (pos >= text.size()) return bad();  // a time of day needs its zone: Z or +hh:mm
    if (text[pos] == 'Z' || text[pos] == 'z') {
      ++pos;
    } else if (text[pos] == '+' || text[pos] == '-') {
      int sign = text[pos++] == '-' ? -1 : 1, offset_hours, offset_minutes;
      if (!read_digits(text, pos, 2, offset_hours) || pos >= text.size() || text[pos++] != ':' ||
          !read_digits(text, pos, 2, offset_minutes))
        return bad();
      offset_s = sign * (offset_hours * 3600 + offset_minutes * 60);
    } else {
      return bad();
    }
    if (pos != text.size()) return bad();
  }
  int64_t seconds = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 + hour * 3600 +
                    minute * 60 + second - offset_s;
  return seconds * 1'000'000'000 + fraction_ns;
}

}  // namespace

Result<int64_t> parse_time_argument(std::string_view text, int64_t now_ns) {
  if (text == "now") return now_ns;
  std::string_view back = text;
  if (back.starts_with("now-")) back.remove_prefix(3);
  if (back.starts_with('-')) {
    auto duration = parse_duration(back.substr(1));
    if (!duration) return failf("'{}' is not a time: {}", text, duration.error().message);
    return now_ns - duration->count() * 1'000'000;
  }
  if (text.find('-') == std::string_view::npos && !text.empty()) {
    double number = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(number) || number < 0)
      return failf("'{}' is not a time (use {})", text, kTimeForms);
    // Seconds until the year 5138; larger numbers are read as ms, then us, then ns.
    double ns = number >= 1e17 ? number : number >= 1e14 ? number * 1e3 : number >= 1e11 ? number * 1e6 : number * 1e9;
    if (ns > 9.2e18) return failf("'{}' is too far in the future", text);
    return static_cast<int64_t>(ns);
  }
  return parse_rfc3339(text);
}

std::string format_rfc3339(int64_t time_ns, int fraction_digits) {
  int64_t seconds = time_ns >= 0 ? time_ns / 1'000'000'000 : (time_ns - 999'999'999) / 1'000'000'000;
  int64_t fraction = time_ns - seconds * 1'000'000'000;
  auto t = static_cast<time_t>(seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                                tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (fraction_digits > 0) {
    int64_t divisor = 1;
    for (int i = fraction_digits; i < 9; ++i) divisor *= 10;
    out += fmt::format(".{:0{}}", fraction / divisor, fraction_digits);
  }
  out.push_back('Z');
  return out;
}

}  // namespace ea::tsdb
