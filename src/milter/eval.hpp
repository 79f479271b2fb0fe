// NAME
//   eval - one message file through the milter's own code path
// DESCRIPTION
//   run_eval() reads an RFC 5322 message (LF or CRLF line ends), drives a
//   Session exactly as the libmilter callbacks do (connect, helo, envfrom,
//   header*, eoh, body, eom) and prints the verdict, the action and the
//   Authentication-Results header the milter would add.
#pragma once

#include <string>
#include <vector>

#include "engine.hpp"

namespace dmarc::milter {

struct EvalInput {
  std::string file;       // "-" for standard input
  std::string ip;         // client address
  std::string helo;
  std::string mail_from;  // without angle brackets; "" for <>
  std::vector<std::string> rcpt;
  std::string auth;       // SMTP-AUTH login, "" for none
};

// Returns the process exit status: 0 accept, 1 quarantine, 2 reject,
// 3 tempfail, 64 usage, 66 unreadable file.
int run_eval(std::shared_ptr<const Engine> engine, const EvalInput& in);

// split_message - headers (name, value as the MTA passes them: text after
// the colon, folding kept with CRLF) and the body with CRLF line ends.
struct SplitMessage {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};
SplitMessage split_message(const std::string& raw);

}  // namespace dmarc::milter
