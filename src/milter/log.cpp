// log.cpp - spdlog set up for syslog or stderr
#include "log.hpp"

#include <syslog.h>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>

namespace dmarc::milter {

namespace {
int facility_of(const std::string& f) {
  if (f == "daemon") return LOG_DAEMON;
  if (f == "user") return LOG_USER;
  if (f.size() == 6 && f.rfind("local", 0) == 0) {
    static const int locals[] = {LOG_LOCAL0, LOG_LOCAL1, LOG_LOCAL2, LOG_LOCAL3,
                                 LOG_LOCAL4, LOG_LOCAL5, LOG_LOCAL6, LOG_LOCAL7};
    int n = f[5] - '0';
    if (n >= 0 && n <= 7) return locals[n];
  }
  return LOG_MAIL;
}
spdlog::level::level_enum level_of(const std::string& l) {
  if (l == "debug") return spdlog::level::debug;
  if (l == "warning") return spdlog::level::warn;
  if (l == "error") return spdlog::level::err;
  return spdlog::level::info;
}
}  // namespace

void setup_logging(const Config& config, bool force_stderr) {
  std::shared_ptr<spdlog::logger> logger;
  if (config.syslog && !force_stderr) {
    auto sink = std::make_shared<spdlog::sinks::syslog_sink_mt>("dmarc-milter", LOG_PID, facility_of(config.syslog_facility),
                                                                false);
    logger = std::make_shared<spdlog::logger>("dmarc-milter", sink);
  } else {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    logger = std::make_shared<spdlog::logger>("dmarc-milter", sink);
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e dmarc-milter[%P]: %l: %v");
  }
  logger->set_level(level_of(config.log_level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace dmarc::milter
