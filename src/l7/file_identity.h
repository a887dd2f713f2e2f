// Which build of a library or program a file is: its GNU build-id when it has one, and the XXH3
// hash of its whole content (the only identity a file built without a build-id has).
#pragma once
#include <string>

#include "core/result.h"

namespace ea {

class ElfFile;

struct FileIdentity {
  std::string build_id;  // lowercase hex, "" when the file has none
  std::string xxh3;      // XXH3-64 of the whole file, 16 lowercase hex digits

  std::string build_id_or_none() const { return build_id.empty() ? "none" : build_id; }
};

// XXH3-64 of everything readable from `fd` (read from offset 0), as 16 lowercase hex digits.
Result<std::string> xxh3_of_fd(int fd);

FileIdentity identify(const ElfFile& file, std::string xxh3);
// Opens `path` as ELF (an error for anything else) and computes both identities.
Result<FileIdentity> identify_file(const std::string& path);

}  // namespace ea
