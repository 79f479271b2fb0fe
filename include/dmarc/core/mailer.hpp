// NAME
//   mailer - how dmarc-report hands a finished report mail to the MTA
// DESCRIPTION
//   Mailer is the seam between the report tools and mail delivery. The
//   implementations (dmarc/report/mailer.hpp) run ReportCommand through
//   posix_spawn (no shell; the message on standard input, the exit status
//   checked, a timeout) or speak SMTP to ReportSMTP (libcurl). The milter
//   never sends mail: only dmarc-report does.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dmarc {

struct MailerError {
  std::string message;     // what failed, for the log and the report state
  bool temporary = true;   // false: retrying the same mail cannot help
};

class Mailer {
 public:
  virtual ~Mailer() = default;
  // describe - "command /usr/sbin/sendmail -t -oi" or "smtp host:port".
  virtual std::string describe() const = 0;
  // send - MESSAGE (RFC 5322, LF line ends) from envelope sender FROM to
  // the envelope recipients TO. nullopt: the MTA took it.
  virtual std::optional<MailerError> send(std::string_view from, const std::vector<std::string>& to,
                                          std::string_view message) = 0;
};

}  // namespace dmarc
