// log.cpp - spdlog set up for syslog or stderr
#include "log.hpp"

#include <syslog.h>

#include <mutex>

#include <spdlog/sinks/dist_sink.h>
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
  // One logger for the life of the process, set as spdlog's default once
  // (at start, before any other thread logs): spdlog::set_default_logger
  // is not safe while other threads log through the default logger. A
  // reload only changes what is behind it: the sink list of a dist_sink
  // (swapped under the sink's own mutex, which every log call takes) and
  // the level (an atomic). Worker threads may log all the while.
  static std::mutex mu;
  static std::shared_ptr<spdlog::sinks::dist_sink_mt> dist;
  static std::shared_ptr<spdlog::logger> logger;
  std::lock_guard<std::mutex> lock(mu);

  spdlog::sink_ptr sink;
  if (config.syslog && !force_stderr) {
    sink = std::make_shared<spdlog::sinks::syslog_sink_mt>("dmarc-milter", LOG_PID, facility_of(config.syslog_facility), false);
    sink->set_pattern("%v");
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    sink->set_pattern("%Y-%m-%dT%H:%M:%S.%e dmarc-milter[%P]: %l: %v");
  }
  if (!logger) {
    dist = std::make_shared<spdlog::sinks::dist_sink_mt>();
    dist->set_sinks({sink});
    logger = std::make_shared<spdlog::logger>("dmarc-milter", dist);
    logger->flush_on(spdlog::level::info);
    logger->set_level(level_of(config.log_level));
    spdlog::set_default_logger(logger);
    return;
  }
  dist->set_sinks({sink});
  logger->set_level(level_of(config.log_level));
}

}  // namespace dmarc::milter
