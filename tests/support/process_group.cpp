// process_group.cpp - see process_group.hpp
#include "support/process_group.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <sstream>
#include <utility>

#include "support/temp_dir.hpp"

namespace dmarc::test {

void stop_group(pid_t& leader, pid_t& watchdog_pid, int& watchdog_fd) noexcept {
  if (watchdog_pid > 0) {
    const char quit = 'q';
    (void)!::write(watchdog_fd, &quit, 1);
    int status = 0;
    while (::waitpid(watchdog_pid, &status, 0) < 0 && errno == EINTR) {
    }
    watchdog_pid = -1;
  }
  if (watchdog_fd >= 0) ::close(std::exchange(watchdog_fd, -1));
  if (leader <= 0) return;
  ::kill(leader, SIGTERM);
  siginfo_t info{};
  bool exited = false;
  for (int i = 0; i < 500 && !exited; ++i) {
    info.si_pid = 0;
    if (::waitid(P_PID, static_cast<id_t>(leader), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == leader) {
      exited = true;
    } else {
      ::usleep(10 * 1000);
    }
  }
  ::kill(-leader, SIGKILL);
  int status = 0;
  while (::waitpid(leader, &status, 0) < 0 && errno == EINTR) {
  }
  leader = -1;
}

std::string process_start_time(pid_t pid) {
  const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  const std::size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return {};
  std::istringstream in(stat.substr(paren + 2));
  std::string field;
  for (int i = 3; i <= 22 && (in >> field); ++i) {
  }
  return field;
}

bool env_is(const char* name, std::string_view value) {
  const char* v = std::getenv(name);
  return v && std::string_view(v) == value;
}

}  // namespace dmarc::test
