// Finds and fetches program files: file://, http(s)://, ftp:// or a plain path, with sha256 pinning.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "spec/spec.h"

namespace ea {

struct FetchedFile {
  std::string content;     // the bytes
  std::string origin;      // resolved absolute path or the URL
  std::string local_path;  // a readable local file with this content (the path itself, or a memfd /proc/self/fd/N)
  int memfd = -1;          // owned when the content came from the network (closed by ~FetchedFile)
  FetchedFile() = default;
  FetchedFile(FetchedFile&&) noexcept;
  FetchedFile& operator=(FetchedFile&&) noexcept;
  ~FetchedFile();
};

// Directories searched for a relative path after the spec's own directory: $EBPF_AGENT_PATH
// (colon-separated), then the installed library dir and the build tree next to the executable,
// each also with its bpf/ and plugins/ subdirectories.
std::vector<std::string> program_search_path();

// Resolves a relative/plain or file:// path to an existing local file.
Result<std::string> resolve_local_path(std::string_view path, const std::string& base_dir);

// Fetches `path` (any scheme). When `sha256` is non-empty the content must match it exactly.
// Errors name `pos` and say how to fix.
Result<FetchedFile> fetch_program_file(std::string_view path, std::string_view sha256, const std::string& base_dir,
                                       const SourcePos& pos);

std::string sha256_hex(std::string_view data);

}  // namespace ea
