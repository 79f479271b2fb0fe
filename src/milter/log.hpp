// NAME
//   log - the milter's logger: spdlog to syslog (mail facility) or stderr
// DESCRIPTION
//   setup_logging() sets up the default spdlog logger from the
//   configuration (Syslog, SyslogFacility, LogLevel). The first call
//   installs the one logger of the process; later calls (SIGHUP reload)
//   change its sink and level in place, safely while other threads log.
//   Untrusted text is sanitised by the caller (sanitize_log) before it is
//   logged.
#pragma once

#include <spdlog/spdlog.h>

#include "dmarc/config/config.hpp"

namespace dmarc::milter {

// setup_logging - FOREGROUND_STDERR forces standard error (with -f when
// Syslog is no, and for --eval).
void setup_logging(const Config& config, bool force_stderr);

}  // namespace dmarc::milter
