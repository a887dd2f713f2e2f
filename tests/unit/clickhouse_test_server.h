// A real clickhouse-server for tests: its own config, data and logs in a temp directory, HTTP on
// a free loopback port (no native TCP port), killed and removed by the destructor.
#pragma once
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "sink/clickhouse_client.h"

namespace ea::test {

inline constexpr const char* kClickHouseServerBinary = "/usr/sbin/clickhouse-server";
inline constexpr const char* kClickHouseTestUser = "agent";
inline constexpr const char* kClickHouseTestPassword = "p\"w,d\\";

inline bool clickhouse_server_available() { return access(kClickHouseServerBinary, X_OK) == 0; }

inline int free_loopback_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0)
    port = ntohs(address.sin_port);
  close(fd);
  return port;
}

class ClickHouseTestServer {
 public:
  ClickHouseTestServer() : port_(free_loopback_port()) {
    char pattern[] = "/tmp/ea-clickhouse-XXXXXX";
    dir_ = mkdtemp(pattern);
    std::ofstream(dir_ + "/config.xml") << fmt::format(R"(<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{0}/log/server.log</log><errorlog>{0}/log/error.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{1}</http_port>
  <path>{0}/data/</path>
  <tmp_path>{0}/tmp/</tmp_path>
  <user_files_path>{0}/user_files/</user_files_path>
  <format_schema_path>{0}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
</yandex>
)",
                                                       dir_, port_);
    std::ofstream(dir_ + "/users.xml") << fmt::format(R"(<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default>
    <{}><password>{}</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></{}>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
)",
                                                      kClickHouseTestUser, "p&quot;w,d\\", kClickHouseTestUser);
  }
  ~ClickHouseTestServer() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  ClickHouseTestServer(const ClickHouseTestServer&) = delete;
  ClickHouseTestServer& operator=(const ClickHouseTestServer&) = delete;

  std::string url() const { return fmt::format("http://127.0.0.1:{}", port_); }
  int port() const { return port_; }

  // Starts the server and waits until it answers; false (with the log in `why`) if it does not.
  bool start(std::string& why) {
    std::string config = "--config-file=" + dir_ + "/config.xml";
    std::string console = dir_ + "/console.log";
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(console.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      execl(kClickHouseServerBinary, kClickHouseServerBinary, config.c_str(), nullptr);
      _exit(127);
    }
    ClickHouseClient client(ClickHouseConnection{.url = url(), .timeout = std::chrono::seconds(2)});
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (client.execute("SELECT 1")) return true;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        why = "clickhouse-server exited: " + read(dir_ + "/console.log") + read(dir_ + "/log/error.log");
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    why = "clickhouse-server did not answer within 60 s: " + read(dir_ + "/log/error.log");
    stop();
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 200; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  static std::string read(const std::string& path) {
    std::ifstream file(path);
    return std::string(std::istreambuf_iterator<char>(file), {});
  }
  int port_;
  std::string dir_;
  pid_t pid_ = -1;
};

}  // namespace ea::test
