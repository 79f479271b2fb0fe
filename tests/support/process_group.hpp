// process_group.hpp - stopping a test server that leads a process group
//
//   dmarc::test::stop_group(master_pid_, watchdog_pid_, watchdog_fd_);
//
// stop_group dismisses the server's watchdog (writes 'q' to WATCHDOG_FD and
// reaps WATCHDOG_PID), sends SIGTERM to LEADER, waits up to 5 s for it to
// exit without reaping it (while it is a zombie its process group id
// cannot be reused, so the SIGKILL that follows reaches only its own
// processes, e.g. a daemon still in a session), kills the group, and reaps
// the leader. Each handle is reset (-1); a handle already -1 is skipped.
// Used by postfix_instance and sendmail_instance.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace dmarc::test {

void stop_group(pid_t& leader, pid_t& watchdog_pid, int& watchdog_fd) noexcept;

// process_start_time - field 22 of /proc/PID/stat ("" if there is no such
// process): with the pid, it names one process (a pid can be reused).
std::string process_start_time(pid_t pid);

// env_is - the environment variable NAME is set to VALUE.
bool env_is(const char* name, std::string_view value);

}  // namespace dmarc::test
