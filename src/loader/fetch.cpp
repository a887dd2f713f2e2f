#include "loader/fetch.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <utility>

#include <fmt/format.h>

namespace ea {
namespace {

namespace fs = std::filesystem;

// A program is code, not data: anything bigger is a mistake or an attack.
constexpr size_t kMaxProgramBytes = 256u << 20;
constexpr std::string_view kFileScheme = "file://";
constexpr const char* kAllowedProtocols = "http,https,ftp";

std::string at(const SourcePos& pos) {
  std::string where = pos.str();
  return where.empty() ? where : where + ": ";
}

Error located(const Error& error, const SourcePos& pos) { return Error{at(pos) + error.message}; }

bool is_remote(std::string_view path) {
  return path.starts_with("http://") || path.starts_with("https://") || path.starts_with("ftp://");
}

// "scheme://user:secret@host/..." -> "scheme://user:***@host/...", so errors and `list` never show a password.
std::string redact_url(std::string_view url) {
  size_t authority = url.find("://");
  if (authority == std::string_view::npos) return std::string(url);
  authority += 3;
  size_t authority_end = url.find_first_of("/?#", authority);
  std::string_view host_part = url.substr(authority, authority_end - authority);
  size_t at_sign = host_part.rfind('@');
  if (at_sign == std::string_view::npos) return std::string(url);
  size_t colon = host_part.substr(0, at_sign).find(':');
  if (colon == std::string_view::npos) return std::string(url);
  return fmt::format("{}{}:***{}", url.substr(0, authority), host_part.substr(0, colon),
                     url.substr(authority + at_sign));
}

Result<std::string> read_local_file(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return failf("cannot open {}: {}", path, std::strerror(errno));
  std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* f) { close(*f); });
  struct stat st {};
  if (fstat(fd, &st) != 0) return failf("cannot stat {}: {}", path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return failf("{} is not a regular file", path);
  if (static_cast<uint64_t>(st.st_size) > kMaxProgramBytes) {
    return failf("{} is {} bytes, more than the {} MiB a program may have", path, st.st_size, kMaxProgramBytes >> 20);
  }
  std::string content(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = read(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failf("cannot read {}: {}", path, std::strerror(errno));
    if (n == 0) break;  // the file shrank while we read it
    done += static_cast<size_t>(n);
  }
  content.resize(done);
  return content;
}

struct Download {
  std::string data;
  bool too_big = false;
};

size_t append_download(char* bytes, size_t size, size_t count, void* user) {
  auto* download = static_cast<Download*>(user);
  size_t length = size * count;
  if (download->data.size() + length > kMaxProgramBytes) {
    download->too_big = true;
    return 0;  // makes curl abort the transfer
  }
  download->data.append(bytes, length);
  return length;
}

Result<std::string> download(const std::string& url, const std::string& shown_url) {
  static std::once_flag curl_ready;
  std::call_once(curl_ready, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return failf("cannot fetch {}: libcurl failed to initialise", shown_url);

  Download result;
  char error_text[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, kAllowedProtocols);
  curl_easy_setopt(curl.get(), CURLOPT_REDIR_PROTOCOLS_STR, kAllowedProtocols);
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(curl.get(), CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxProgramBytes));
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: safe in threads
  curl_easy_setopt(curl.get(), CURLOPT_USERAGENT, "ebpf-agent/" EA_VERSION);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, append_download);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &result);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error_text);

  CURLcode code = curl_easy_perform(curl.get());
  if (result.too_big || code == CURLE_FILESIZE_EXCEEDED) {
    return failf("cannot fetch {}: larger than the {} MiB a program may have", shown_url, kMaxProgramBytes >> 20);
  }
  if (code != CURLE_OK) {
    return failf("cannot fetch {}: {} (check the URL and that the server is reachable from this host)", shown_url,
                 error_text[0] ? error_text : curl_easy_strerror(code));
  }
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  const char* scheme = nullptr;
  curl_easy_getinfo(curl.get(), CURLINFO_SCHEME, &scheme);
  bool http = scheme && (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0);
  if (http && status >= 400) return failf("cannot fetch {}: the server answered HTTP {}", shown_url, status);
  return std::move(result.data);
}

// Network content is handed to loaders as a sealed in-memory file: dlopen() needs a path, and the
// seals keep the bytes that passed the sha256 check from changing afterwards.
Result<int> sealed_memfd(std::string_view url, const std::string& content) {
  std::string name = "ebpf-agent:" + std::string(url.substr(url.rfind('/') + 1)).substr(0, 200);
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return failf("memfd_create failed: {}", std::strerror(errno));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int error = errno;
      close(fd);
      return failf("writing the fetched program to memory failed: {}", std::strerror(error));
    }
    done += static_cast<size_t>(n);
  }
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    int error = errno;
    close(fd);
    return failf("sealing the fetched program failed: {}", std::strerror(error));
  }
  return fd;
}

std::string lowercase(std::string_view text) {
  std::string lower(text);
  std::ranges::transform(lower, lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
}

bool is_existing_file(const fs::path& path) {
  std::error_code error;
  return fs::is_regular_file(path, error);
}

}  // namespace

FetchedFile::FetchedFile(FetchedFile&& other) noexcept
    : content(std::move(other.content)),
      origin(std::move(other.origin)),
      local_path(std::move(other.local_path)),
      memfd(std::exchange(other.memfd, -1)) {}

FetchedFile& FetchedFile::operator=(FetchedFile&& other) noexcept {
  if (this != &other) {
    if (memfd >= 0) close(memfd);
    content = std::move(other.content);
    origin = std::move(other.origin);
    local_path = std::move(other.local_path);
    memfd = std::exchange(other.memfd, -1);
  }
  return *this;
}

FetchedFile::~FetchedFile() {
  if (memfd >= 0) close(memfd);
}

std::vector<std::string> program_search_path() {
  std::vector<std::string> roots;
  if (const char* env = std::getenv("EBPF_AGENT_PATH")) {
    std::string_view list = env;
    while (!list.empty()) {
      size_t colon = list.find(':');
      std::string_view dir = list.substr(0, colon);
      if (!dir.empty()) roots.emplace_back(dir);
      if (colon == std::string_view::npos) break;
      list.remove_prefix(colon + 1);
    }
  }
  roots.emplace_back(EA_INSTALL_LIBDIR);
  std::error_code error;
  fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (!error) {
    roots.push_back((exe.parent_path().parent_path() / "lib" / "ebpf-agent").string());  // relocated install
    roots.push_back(exe.parent_path().string());                                         // build tree
  }

  std::vector<std::string> dirs;
  for (const std::string& root : roots) {
    for (const char* sub : {"", "bpf", "plugins"}) {
      std::string dir = *sub ? (fs::path(root) / sub).string() : root;
      if (std::ranges::find(dirs, dir) == dirs.end()) dirs.push_back(std::move(dir));
    }
  }
  return dirs;
}

Result<std::string> resolve_local_path(std::string_view path, const std::string& base_dir) {
  if (path.starts_with(kFileScheme)) path.remove_prefix(kFileScheme.size());
  if (path.empty()) return fail("the path is empty");
  fs::path wanted(path);
  if (wanted.is_absolute()) {
    if (is_existing_file(wanted)) return wanted.lexically_normal().string();
    std::error_code error;
    if (fs::exists(wanted, error)) return failf("{} is not a regular file", wanted.string());
    return failf("no such file: {}", wanted.string());
  }
  std::vector<std::string> looked_in;
  if (!base_dir.empty()) looked_in.push_back(base_dir);
  for (std::string& dir : program_search_path()) looked_in.push_back(std::move(dir));
  for (const std::string& dir : looked_in) {
    fs::path candidate = fs::path(dir) / wanted;
    if (is_existing_file(candidate)) {
      std::error_code error;
      fs::path absolute = fs::absolute(candidate, error);
      return (error ? candidate : absolute).lexically_normal().string();
    }
  }
  return failf("cannot find '{}'; looked in: {} (give an absolute path, or add its directory to $EBPF_AGENT_PATH)",
               wanted.string(), fmt::join(looked_in, ", "));
}

Result<FetchedFile> fetch_program_file(std::string_view path, std::string_view sha256, const std::string& base_dir,
                                       const SourcePos& pos) {
  FetchedFile file;
  if (is_remote(path)) {
    file.origin = redact_url(path);
    auto content = download(std::string(path), file.origin);
    if (!content) return std::unexpected(located(content.error(), pos));
    file.content = std::move(*content);
  } else {
    size_t scheme_end = path.find("://");
    if (scheme_end != std::string_view::npos && !path.starts_with(kFileScheme)) {
      return failf("{}unsupported scheme '{}://' in '{}': use file://, http://, https://, ftp:// or a plain path",
                   at(pos), path.substr(0, scheme_end), path);
    }
    auto resolved = resolve_local_path(path, base_dir);
    if (!resolved) return std::unexpected(located(resolved.error(), pos));
    auto content = read_local_file(*resolved);
    if (!content) return std::unexpected(located(content.error(), pos));
    file.origin = *resolved;
    file.local_path = std::move(*resolved);
    file.content = std::move(*content);
  }

  if (!sha256.empty()) {
    std::string actual = sha256_hex(file.content);
    if (lowercase(sha256) != actual) {
      return failf(
          "{}sha256 mismatch for {}: expected {}, got {} — the program changed or the pin is wrong; update "
          "`sha256` only if you trust the new content",
          at(pos), file.origin, sha256, actual);
    }
  }

  if (file.local_path.empty()) {
    auto fd = sealed_memfd(file.origin, file.content);
    if (!fd) return std::unexpected(with_context(fd.error(), at(pos) + file.origin));
    file.memfd = *fd;
    file.local_path = fmt::format("/proc/self/fd/{}", file.memfd);
  }
  return file;
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) fmt::format_to(std::back_inserter(hex), "{:02x}", digest[i]);
  return hex;
}

}  // namespace ea
