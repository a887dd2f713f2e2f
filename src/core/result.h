// Errors as values across module boundaries.
#pragma once
#include <expected>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace ea {

struct Error {
  std::string message;
};

template <class T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(std::string message) { return std::unexpected(Error{std::move(message)}); }

template <class... Args>
std::unexpected<Error> failf(fmt::format_string<Args...> format, Args&&... args) {
  return std::unexpected(Error{fmt::format(format, std::forward<Args>(args)...)});
}

// Prefixes an error with context ("loading program 'x': <error>").
inline Error with_context(const Error& error, std::string_view context) {
  return Error{fmt::format("{}: {}", context, error.message)};
}

}  // namespace ea
