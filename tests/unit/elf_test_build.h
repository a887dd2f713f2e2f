// Helpers for the ELF / offsets database tests: a temporary directory and tiny programs and
// libraries compiled with the system gcc inside it, so each test knows exactly what it reads.
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace ea::test {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "ea-offsets-test-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string write(const std::string& name, const std::string& content) const {
    fs::path target = path_ / name;
    fs::create_directories(target.parent_path());
    std::ofstream(target, std::ios::binary) << content;
    return target.string();
  }

 private:
  fs::path path_;
};

// Runs a shell command; its exit status and combined output.
struct CommandResult {
  int status = -1;
  std::string output;
};

inline CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  char buffer[4096];
  size_t got = 0;
  while ((got = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, got);
  int status = pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Compiles `source` (C) into `output` with `flags`; fails the test with gcc's output otherwise.
inline bool compile_c(const TempDir& dir, const std::string& name, const std::string& source, const std::string& output,
                      const std::string& flags) {
  std::string source_path = dir.write(name, source);
  CommandResult result = run_command("gcc -O2 -g " + flags + " -o '" + output + "' '" + source_path + "'");
  EXPECT_EQ(result.status, 0) << "gcc failed:\n" << result.output;
  return result.status == 0;
}

inline std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A program with functions a uprobe could want: one exported-style global, one static (local
// symbol only), one weak. Run with no argument, it prints the first 16 bytes of
// ea_probe_target's machine code in hex, as the CPU sees them.
inline constexpr const char* kProbeProgram = R"(
#include <stdio.h>
#include <string.h>
__attribute__((noinline)) int ea_probe_target(int x) { __asm__ volatile(""); return x * 3 + 1; }
__attribute__((noinline)) static int ea_local_helper(int x) { __asm__ volatile(""); return x ^ 0x55; }
__attribute__((noinline, weak)) int ea_weak_target(int x) { __asm__ volatile(""); return x + 7; }
int main(int argc, char** argv) {
  (void)argv;
  unsigned char code[16];
  memcpy(code, (const void*)&ea_probe_target, sizeof(code));
  for (int i = 0; i < 16; ++i) printf("%02x", code[i]);
  printf("\n");
  return ea_local_helper(argc) + ea_weak_target(argc) == 0;
}
)";

inline std::string hex_of(const std::string& bytes) {
  std::string out;
  char two[3];
  for (unsigned char c : bytes) {
    snprintf(two, sizeof(two), "%02x", c);
    out += two;
  }
  return out;
}

}  // namespace ea::test
