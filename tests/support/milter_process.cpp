// milter_process.cpp - run the built dmarc-milter for tests
#include "milter_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace dmarc::test {

namespace {
bool port_accepts(std::uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// A TCP port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_tcp_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    throw std::runtime_error("bind");
  }
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}
}  // namespace

MilterProcess::MilterProcess(const std::string& config_text) : MilterProcess(config_text, 0) {}

MilterProcess::MilterProcess(const std::string& config_text, std::uint16_t config_port)
    : MilterProcess(config_text, config_port, {}) {}

MilterProcess::MilterProcess(const std::string& config_text, std::uint16_t config_port,
                             const std::vector<std::string>& env) {
  char tmpl[] = "/tmp/dmarc-milter-test-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
  dir_ = tmpl;
  config_path_ = dir_ + "/dmarc-milter.conf";
  log_path_ = dir_ + "/milter.log";
  rewrite_config(config_text);
  port_ = config_port ? config_port : free_tcp_port();
  std::string binary = std::string(DMARC_BINARY_DIR) + "/dmarc-milter";
  std::string sock = "inet:" + std::to_string(port_) + "@127.0.0.1";
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork");
  if (pid_ == 0) {
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    for (const std::string& e : env) putenv(const_cast<char*>(e.c_str()));
    if (config_port)
      execl(binary.c_str(), binary.c_str(), "-f", "-c", config_path_.c_str(), static_cast<char*>(nullptr));
    else
      execl(binary.c_str(), binary.c_str(), "-f", "-c", config_path_.c_str(), "-p", sock.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 200; ++i) {
    if (port_accepts(port_)) return;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("dmarc-milter exited at start:\n" + log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop();
  throw std::runtime_error("dmarc-milter did not listen within 10 s:\n" + log());
}

MilterProcess::~MilterProcess() {
  stop();
  if (!std::getenv("DMARC_TEST_KEEP_MILTER")) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string MilterProcess::postfix_address() const { return "inet:127.0.0.1:" + std::to_string(port_); }

std::string MilterProcess::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool MilterProcess::wait_log(const std::string& text, std::chrono::milliseconds timeout) const {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (log().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return log().find(text) != std::string::npos;
}

void MilterProcess::rewrite_config(const std::string& config_text) {
  std::string tmp = config_path_ + ".new";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << config_text;
    // Never the system's store: a test that names none records into its
    // own directory (the recorder runs in every end-to-end test).
    if (config_text.find("ReportStore") == std::string::npos) out << "\nReportStore sqlite:" << dir_ << "/reports.db\n";
  }
  std::filesystem::rename(tmp, config_path_);
}

void MilterProcess::reload() {
  if (pid_ > 0) kill(pid_, SIGHUP);
}

bool MilterProcess::running() const { return pid_ > 0 && kill(pid_, 0) == 0; }

int MilterProcess::stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  for (int i = 0; i < 400; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return -1;
}

}  // namespace dmarc::test
