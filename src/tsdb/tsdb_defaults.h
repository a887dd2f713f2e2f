// Where the embedded store lives unless told otherwise, and its default limits; shared by the
// output (`--output tsdb[:DIR]`) and `ebpf-agent query --db`.
#pragma once
#include <chrono>
#include <cstdint>

namespace ea::tsdb {

inline constexpr const char* kDefaultTsdbDir = "/var/lib/ebpf-agent/tsdb";
// The SQLite file inside the store directory (plus its -wal and -shm while open).
inline constexpr const char* kDatabaseFileName = "store.db";
// Held (flock) by the one process writing the store.
inline constexpr const char* kLockFileName = "LOCK";

inline constexpr std::chrono::milliseconds kDefaultRetention = std::chrono::hours(24 * 15);
inline constexpr uint64_t kDefaultMaxSize = 1ull << 30;
inline constexpr std::chrono::milliseconds kDefaultFlushInterval = std::chrono::seconds(5);
inline constexpr uint64_t kDefaultQueueBytes = 64ull << 20;

}  // namespace ea::tsdb
