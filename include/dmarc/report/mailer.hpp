// NAME
//   mailer - ReportCommand (posix_spawn) and ReportSMTP (libcurl) mailers
// SYNOPSIS
//   auto argv = dmarc::split_command("/usr/sbin/sendmail -t -oi");
//   auto m = dmarc::command_mailer(argv.value(), std::chrono::seconds(120));
//   auto err = m->send("dmarc@example.net", {"rua@example.com"}, message);
// DESCRIPTION
//   command_mailer runs ARGV[0] with ARGV through posix_spawn: no shell,
//   ARGV[0] an absolute path. A sendmail(1) (ARGV[0] named "sendmail")
//   without -f gets "-f FROM", the report's envelope sender; a command
//   without -t gets "--" and the recipients as its last arguments (with
//   -t the MTA reads them from the To field). The rest of the contract:
//   the message on standard input, standard output and error captured
//   (the first 4 KiB go into the error text). Exit status 0 is success;
//   another status, a signal, or no exit within TIMEOUT (the child is then
//   killed with SIGKILL) is a failure. The child stays in dmarc-report's
//   process group, so a service manager that stops dmarc-report stops the
//   command as well.
//   smtp_mailer speaks SMTP to HOST:PORT through libcurl, STARTTLS when the
//   server offers it (CURLUSESSL_TRY), the envelope from FROM to TO, the
//   message with CRLF line ends; TIMEOUT bounds the whole exchange. A 5xx
//   reply is a permanent error, everything else temporary.
//   split_command splits a ReportCommand value into words: blanks separate,
//   "double" and 'single' quotes group, backslash escapes the next
//   character. No other shell syntax.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/expected.hpp"
#include "dmarc/core/mailer.hpp"

namespace dmarc {

Expected<std::vector<std::string>, std::string> split_command(std::string_view command);

std::unique_ptr<Mailer> command_mailer(std::vector<std::string> argv, std::chrono::milliseconds timeout);

// HOST_PORT "host:port" or "[v6]:port"; HELO the name to greet with.
std::unique_ptr<Mailer> smtp_mailer(std::string host_port, std::string helo, std::chrono::milliseconds timeout);

}  // namespace dmarc
