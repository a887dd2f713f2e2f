#include "tsdb/sqlite.h"

#include <fmt/format.h>

namespace ea::tsdb {

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    if (statement_) sqlite3_finalize(statement_);
    db_ = other.db_;
    statement_ = other.statement_;
    other.statement_ = nullptr;
  }
  return *this;
}

Statement::~Statement() {
  if (statement_) sqlite3_finalize(statement_);
}

Statement& Statement::bind(int index, int64_t value) {
  sqlite3_bind_int64(statement_, index, value);
  return *this;
}

Statement& Statement::bind(int index, double value) {
  sqlite3_bind_double(statement_, index, value);
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  sqlite3_bind_text64(statement_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Statement& Statement::bind_blob(int index, std::string_view bytes) {
  sqlite3_bind_blob64(statement_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::bind_null(int index) {
  sqlite3_bind_null(statement_, index);
  return *this;
}

Result<bool> Statement::step() {
  int rc = sqlite3_step(statement_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const char* file = sqlite3_db_filename(db_, "main");
  return failf("{} in {}: {}", sqlite3_sql(statement_), file ? file : "?", sqlite3_errmsg(db_));
}

Result<void> Statement::run() {
  auto stepped = step();
  reset();
  if (!stepped) return std::unexpected(stepped.error());
  return {};
}

void Statement::reset() {
  sqlite3_reset(statement_);
  sqlite3_clear_bindings(statement_);
}

std::string_view Statement::column_text(int column) const {
  auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement_, column));
  return text ? std::string_view(text, sqlite3_column_bytes(statement_, column)) : std::string_view();
}

std::string_view Statement::column_blob(int column) const {
  auto* bytes = static_cast<const char*>(sqlite3_column_blob(statement_, column));
  return bytes ? std::string_view(bytes, sqlite3_column_bytes(statement_, column)) : std::string_view();
}

Result<Database> Database::open(const std::string& path, Mode mode) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_NOMUTEX | (mode == Mode::ReadOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Database db;
  db.db_.reset(raw);
  db.path_ = path;
  if (rc != SQLITE_OK)
    return failf("cannot open {}: {}", path, raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

Result<void> Database::exec(std::string_view sql) {
  char* message = nullptr;
  std::string text(sql);
  int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return {};
  std::string reason = message ? message : sqlite3_errstr(rc);
  sqlite3_free(message);
  return failf("{} in {}: {}", text, path_, reason);
}

Result<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* statement = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &statement, nullptr);
  if (rc != SQLITE_OK) return std::unexpected(error(fmt::format("preparing '{}'", sql)));
  return Statement(db_.get(), statement);
}

Result<int64_t> Database::query_int(std::string_view sql) {
  auto statement = prepare(sql);
  if (!statement) return std::unexpected(statement.error());
  auto row = statement->step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return failf("'{}' in {} returned no row", sql, path_);
  return statement->column_int(0);
}

Error Database::error(std::string_view what) const {
  return Error{fmt::format("{} in {}: {}", what, path_, sqlite3_errmsg(db_.get()))};
}

}  // namespace ea::tsdb
