// milter_process.hpp - the built dmarc-milter, run as a real daemon for tests
//
// MilterProcess writes CONFIG_TEXT to a fresh directory, starts
// DMARC_BINARY_DIR/dmarc-milter -f -c that file -p inet:PORT@127.0.0.1 (a
// free port) with its standard error in a log file, and waits until the
// port accepts connections. The destructor sends SIGTERM and waits. The
// config should say "Syslog no" so the log file gets the lines. A config
// without ReportStore gets "ReportStore sqlite:DIR/reports.db" (DIR the
// fresh directory), never the system's store.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace dmarc::test {

class MilterProcess {
 public:
  explicit MilterProcess(const std::string& config_text);
  // With CONFIG_PORT: no -p; the Socket of the config is used, and
  // CONFIG_PORT (its inet port) is waited for.
  MilterProcess(const std::string& config_text, std::uint16_t config_port);
  // With ENV: NAME=VALUE entries added to the daemon's environment.
  MilterProcess(const std::string& config_text, std::uint16_t config_port, const std::vector<std::string>& env);
  ~MilterProcess();
  MilterProcess(const MilterProcess&) = delete;
  MilterProcess& operator=(const MilterProcess&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  // "inet:127.0.0.1:PORT" as Postfix writes milter addresses.
  std::string postfix_address() const;
  pid_t pid() const noexcept { return pid_; }
  const std::string& config_path() const noexcept { return config_path_; }
  std::string log() const;
  // wait_log - until TEXT appears in the log (true) or TIMEOUT passes.
  bool wait_log(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  // rewrite_config + reload: SIGHUP after replacing the file.
  void rewrite_config(const std::string& config_text);
  void reload();
  // stop - SIGTERM and wait; returns the exit status (or -1).
  int stop();
  bool running() const;

 private:
  std::string dir_, config_path_, log_path_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace dmarc::test
