// A thin RAII layer over libsqlite3 for the store: a connection, prepared statements, and
// errors as values naming the database file and what was being done.
#pragma once
#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ea::tsdb {

class Statement {
 public:
  Statement() = default;
  Statement(sqlite3* db, sqlite3_stmt* statement) : db_(db), statement_(statement) {}
  Statement(Statement&& other) noexcept { *this = std::move(other); }
  Statement& operator=(Statement&& other) noexcept;
  ~Statement();

  Statement& bind(int index, int64_t value);
  Statement& bind(int index, double value);
  Statement& bind(int index, std::string_view text);
  Statement& bind_blob(int index, std::string_view bytes);
  Statement& bind_null(int index);
  // SQLITE_ROW -> true, SQLITE_DONE -> false, anything else -> error.
  Result<bool> step();
  // Steps to completion (for statements returning no rows) and resets for the next use.
  Result<void> run();
  void reset();

  int64_t column_int(int column) const { return sqlite3_column_int64(statement_, column); }
  double column_double(int column) const { return sqlite3_column_double(statement_, column); }
  std::string_view column_text(int column) const;
  std::string_view column_blob(int column) const;
  bool column_is_null(int column) const { return sqlite3_column_type(statement_, column) == SQLITE_NULL; }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* statement_ = nullptr;
};

class Database {
 public:
  enum class Mode { ReadWrite, ReadOnly };
  static Result<Database> open(const std::string& path, Mode mode);
  Database() = default;
  Database(Database&&) noexcept = default;
  Database& operator=(Database&&) noexcept = default;

  Result<void> exec(std::string_view sql);
  Result<Statement> prepare(std::string_view sql);
  // The single integer a PRAGMA or SELECT returns.
  Result<int64_t> query_int(std::string_view sql);
  // "<what> in <path>: <sqlite message>"
  Error error(std::string_view what) const;
  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_.get(); }

 private:
  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  std::unique_ptr<sqlite3, Closer> db_;
  std::string path_;
};

}  // namespace ea::tsdb
