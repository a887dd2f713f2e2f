// Fetching program files: plain and file:// paths, the search path, http:// and ftp:// from real
// local servers (python3's http.server and pyftpdlib on free loopback ports), sha256 pins.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "loader/fetch.h"

extern char** environ;

namespace ea {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "ea-fetch-test-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  fs::path write(const fs::path& relative, const std::string& content) const {
    fs::path file = path_ / relative;
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << content;
    return file;
  }

 private:
  fs::path path_;
};

// Sets an environment variable for one test and restores the old value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

int free_loopback_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

bool port_accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool connected = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(fd);
  return connected;
}

// The first python3 that can import `module` (a pyenv shim on PATH may lack Debian's packages).
std::string python_with(const std::string& module) {
  for (const char* python : {"python3", "/usr/bin/python3"}) {
    std::string command = std::string(python) + " -c 'import " + module + "' >/dev/null 2>&1";
    if (std::system(command.c_str()) == 0) return python;
  }
  return {};
}

// A server process this test starts on a loopback port and stops (by its pid) when done.
class LocalServer {
 public:
  LocalServer(std::vector<std::string> args, int port) : port_(port) {
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (pid_ > 0 && !port_accepts(port_) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~LocalServer() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  bool ready() const { return pid_ > 0 && port_accepts(port_); }

 private:
  pid_t pid_ = -1;
  int port_;
};

std::string read_all(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

const SourcePos kPos{"s.yaml", 3, 7};
const std::string kProgram = std::string("\x7f" "ELF program bytes\0with a NUL", 29);

TEST(Fetch, Sha256OfKnownInput) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Fetch, PlainAbsolutePathKeepsItsOwnPath) {
  TempDir dir;
  fs::path file = dir.write("prog.bpf.o", kProgram);
  auto fetched = fetch_program_file(file.string(), "", "", kPos);
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_EQ(fetched->content, kProgram);
  EXPECT_EQ(fetched->origin, file.string());
  EXPECT_EQ(fetched->local_path, file.string());
  EXPECT_EQ(fetched->memfd, -1);
}

TEST(Fetch, FileSchemeAbsoluteAndRelativeToTheSpec) {
  TempDir dir;
  fs::path file = dir.write("sub/prog.bpf.o", kProgram);
  auto absolute = fetch_program_file("file://" + file.string(), "", "", kPos);
  ASSERT_TRUE(absolute) << absolute.error().message;
  EXPECT_EQ(absolute->local_path, file.string());
  auto relative = fetch_program_file("file://sub/prog.bpf.o", "", dir.path().string(), kPos);
  ASSERT_TRUE(relative) << relative.error().message;
  EXPECT_EQ(relative->local_path, file.string());
  auto plain = fetch_program_file("sub/../sub/prog.bpf.o", "", dir.path().string(), kPos);
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(plain->origin, file.string());
}

TEST(Fetch, RelativePathFromTheSearchPath) {
  TempDir first;
  TempDir second;
  fs::path file = second.write("bpf/found.bpf.o", kProgram);
  ScopedEnv path("EBPF_AGENT_PATH", first.path().string() + "::" + second.path().string());
  auto dirs = program_search_path();
  auto position = [&](const fs::path& dir) { return std::ranges::find(dirs, dir.string()) - dirs.begin(); };
  EXPECT_LT(position(first.path()), position(second.path() / "bpf"));
  EXPECT_LT(position(second.path() / "plugins"), position(EA_INSTALL_LIBDIR));
  EXPECT_NE(position(fs::path(EA_BUILD_DIR) / "tests" / "bpf"), static_cast<long>(dirs.size()))
      << "the test executable's own bpf/ directory is searched";

  TempDir spec_dir;
  auto fetched = fetch_program_file("found.bpf.o", "", spec_dir.path().string(), kPos);
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_EQ(fetched->local_path, file.string());

  // The spec's own directory comes first.
  fs::path own = spec_dir.write("found.bpf.o", "own");
  auto preferred = fetch_program_file("found.bpf.o", "", spec_dir.path().string(), kPos);
  ASSERT_TRUE(preferred) << preferred.error().message;
  EXPECT_EQ(preferred->local_path, own.string());
}

TEST(Fetch, BuildTreeObjectsAreFoundNextToTheExecutable) {
  auto fetched = fetch_program_file("obj_types.bpf.o", "", "", kPos);
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_EQ(fetched->local_path, (fs::path(EA_BUILD_DIR) / "tests" / "bpf" / "obj_types.bpf.o").lexically_normal());
}

TEST(Fetch, MissingFileSaysWhereItLooked) {
  TempDir spec_dir;
  ScopedEnv path("EBPF_AGENT_PATH", "/nonexistent/ea-one");
  auto fetched = fetch_program_file("file://missing.bpf.o", "", spec_dir.path().string(), kPos);
  ASSERT_FALSE(fetched);
  const std::string& message = fetched.error().message;
  EXPECT_TRUE(message.starts_with("s.yaml:3:7: cannot find 'missing.bpf.o'; looked in: " + spec_dir.path().string() +
                                  ", /nonexistent/ea-one, /nonexistent/ea-one/bpf, /nonexistent/ea-one/plugins, " +
                                  EA_INSTALL_LIBDIR))
      << message;
  EXPECT_NE(message.find("$EBPF_AGENT_PATH"), std::string::npos) << message;

  auto absolute = fetch_program_file("/nonexistent/ea-prog.bpf.o", "", "", kPos);
  ASSERT_FALSE(absolute);
  EXPECT_EQ(absolute.error().message, "s.yaml:3:7: no such file: /nonexistent/ea-prog.bpf.o");
}

TEST(Fetch, UnsupportedSchemeIsRefused) {
  auto fetched = fetch_program_file("gopher://host/prog.o", "", "", kPos);
  ASSERT_FALSE(fetched);
  EXPECT_EQ(fetched.error().message,
            "s.yaml:3:7: unsupported scheme 'gopher://' in 'gopher://host/prog.o': use file://, http://, https://, "
            "ftp:// or a plain path");
}

TEST(Fetch, Sha256PinMatchesOrRefuses) {
  TempDir dir;
  fs::path file = dir.write("prog.bpf.o", kProgram);
  std::string digest = sha256_hex(kProgram);
  std::string upper = digest;
  std::ranges::transform(upper, upper.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  EXPECT_TRUE(fetch_program_file(file.string(), digest, "", kPos));
  EXPECT_TRUE(fetch_program_file(file.string(), upper, "", kPos));

  std::string wrong(64, '0');
  auto refused = fetch_program_file(file.string(), wrong, "", kPos);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message,
            "s.yaml:3:7: sha256 mismatch for " + file.string() + ": expected " + wrong + ", got " + digest +
                " — the program changed or the pin is wrong; update `sha256` only if you trust the new content");
}

TEST(Fetch, HttpIntoASealedMemfd) {
  TempDir dir;
  dir.write("prog.bpf.o", kProgram);
  int port = free_loopback_port();
  LocalServer server({"python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir.path().string(),
                      std::to_string(port)},
                     port);
  ASSERT_TRUE(server.ready()) << "python3 -m http.server did not start on port " << port;
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/prog.bpf.o";

  auto fetched = fetch_program_file(url, sha256_hex(kProgram), "", kPos);
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_EQ(fetched->content, kProgram);
  EXPECT_EQ(fetched->origin, url);
  ASSERT_GE(fetched->memfd, 0);
  EXPECT_EQ(fetched->local_path, "/proc/self/fd/" + std::to_string(fetched->memfd));
  EXPECT_EQ(read_all(fetched->local_path), kProgram);
  EXPECT_EQ(write(fetched->memfd, "x", 1), -1) << "the fetched content is sealed";

  int memfd = fetched->memfd;
  FetchedFile moved = std::move(*fetched);
  EXPECT_EQ(moved.memfd, memfd);
  EXPECT_EQ(fetched->memfd, -1);

  auto mismatch = fetch_program_file(url, std::string(64, 'a'), "", kPos);
  ASSERT_FALSE(mismatch);
  EXPECT_NE(mismatch.error().message.find("sha256 mismatch for " + url + ": expected " + std::string(64, 'a')),
            std::string::npos)
      << mismatch.error().message;

  auto missing = fetch_program_file("http://127.0.0.1:" + std::to_string(port) + "/nope.o", "", "", kPos);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message,
            "s.yaml:3:7: cannot fetch http://127.0.0.1:" + std::to_string(port) + "/nope.o: the server answered HTTP 404");
}

TEST(Fetch, Ftp) {
  std::string python = python_with("pyftpdlib");
  if (python.empty()) GTEST_SKIP() << "no python3 with pyftpdlib (install python3-pyftpdlib)";
  TempDir dir;
  dir.write("prog.bpf.o", kProgram);
  int port = free_loopback_port();
  LocalServer server({python, "-m", "pyftpdlib", "-i", "127.0.0.1", "-p", std::to_string(port), "-d",
                      dir.path().string()},
                     port);
  ASSERT_TRUE(server.ready()) << "pyftpdlib did not start on port " << port;
  auto fetched = fetch_program_file("ftp://127.0.0.1:" + std::to_string(port) + "/prog.bpf.o", sha256_hex(kProgram),
                                    "", kPos);
  ASSERT_TRUE(fetched) << fetched.error().message;
  EXPECT_EQ(fetched->content, kProgram);
  EXPECT_EQ(read_all(fetched->local_path), kProgram);
}

TEST(Fetch, UnreachableUrlSaysSo) {
  int port = free_loopback_port();  // nothing listens here
  std::string url = "http://user:secret@127.0.0.1:" + std::to_string(port) + "/prog.bpf.o";
  auto fetched = fetch_program_file(url, "", "", kPos);
  ASSERT_FALSE(fetched);
  const std::string& message = fetched.error().message;
  EXPECT_TRUE(message.starts_with("s.yaml:3:7: cannot fetch http://user:***@127.0.0.1:" + std::to_string(port) +
                                  "/prog.bpf.o: "))
      << message;
  EXPECT_NE(message.find("Couldn't connect to server"), std::string::npos) << message;
  EXPECT_NE(message.find("check the URL and that the server is reachable"), std::string::npos) << message;
  EXPECT_EQ(message.find("secret"), std::string::npos) << message;
}

}  // namespace
}  // namespace ea
