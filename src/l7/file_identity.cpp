#include "l7/file_identity.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include <fmt/format.h>
#include <xxhash.h>

#include "l7/elf_file.h"

namespace ea {

Result<std::string> xxh3_of_fd(int fd) {
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(), XXH3_freeState);
  if (!state || XXH3_64bits_reset(state.get()) != XXH_OK) return fail("cannot set up an XXH3 hash state");
  std::vector<char> buffer(1 << 20);
  off_t offset = 0;
  while (true) {
    ssize_t got = pread(fd, buffer.data(), buffer.size(), offset);
    if (got < 0) {
      if (errno == EINTR) continue;
      return failf("reading the file to hash it failed: {}", std::strerror(errno));
    }
    if (got == 0) break;
    XXH3_64bits_update(state.get(), buffer.data(), static_cast<size_t>(got));
    offset += got;
  }
  return fmt::format("{:016x}", XXH3_64bits_digest(state.get()));
}

FileIdentity identify(const ElfFile& file, std::string xxh3) { return FileIdentity{file.build_id(), std::move(xxh3)}; }

Result<FileIdentity> identify_file(const std::string& path) {
  auto file = ElfFile::open(path);
  if (!file) return std::unexpected(file.error());
  auto hash = xxh3_of_fd(file->fd());
  if (!hash) return failf("{}: {}", path, hash.error().message);
  return identify(*file, std::move(*hash));
}

}  // namespace ea
