// NAME
//   milter_stub - a scripted milter that records what Postfix sends it
// SYNOPSIS
//   dmarc::test::MilterStubOptions so;
//   so.eom_reply = "550 5.7.1 stub says no";
//   dmarc::test::MilterStub stub(so);
//   dmarc::test::PostfixOptions po;
//   po.milter = stub.address();                  // "inet:127.0.0.1:PORT"
//   ...
//   for (const auto& s : stub.sessions()) s.macro("auth_authen");
// DESCRIPTION
//   MilterStub speaks the server side of the milter protocol (version 6,
//   as Postfix's MILTER_README and libmilter's mfdef.h define it) on
//   127.0.0.1, without libmilter, so that the harness suite can check
//   what Postfix hands a milter (macros, envelope, headers) and that a
//   milter's reply, added header or quarantine reaches the SMTP client,
//   the delivered message or the hold queue. It is a test of the harness,
//   not of dmarc-milter.
//
//   Each milter connection is served by its own thread. A session starts
//   at each SMFIC_CONNECT (Postfix can reuse one connection for several
//   SMTP sessions, and starts again after XCLIENT); sessions() returns a
//   snapshot of all of them, oldest first. Every command gets "continue",
//   except at end of message, where the stub first adds the configured
//   header and quarantine, then sends eom_reply (SMFIR_REPLYCODE) or
//   "continue".
// SECURITY
//   Test code only.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace dmarc::test {

struct MilterStubOptions {
  std::string eom_reply;          // e.g. "550 5.7.1 rejected by stub"; "" = continue
  std::string add_header_name;    // header added at end of message; "" = none
  std::string add_header_value;
  std::string quarantine_reason;  // SMFIR_QUARANTINE at end of message; "" = none
};

struct MilterSession {
  std::string host;  // as Postfix names the client: "mail.example.org" or "[198.51.100.7]"
  char family = 0;   // '4', '6', 'L' (unix), 'U' (unknown)
  std::string addr;  // the client address, as text
  std::string helo;
  std::vector<std::string> mail_from;  // MAIL FROM arguments; the first is "<address>"
  std::vector<std::string> rcpt_to;    // first argument of each RCPT TO
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::vector<char> commands;                 // every command code received, in order
  std::map<std::string, std::string> macros;  // every macro, latest value; names without braces
  int messages = 0;                           // end-of-message commands seen

  // macro - the value of macro NAME ("auth_authen" or "{auth_authen}"), or "".
  std::string macro(const std::string& name) const;
};

class MilterStub {
 public:
  MilterStub();
  explicit MilterStub(MilterStubOptions options);
  ~MilterStub();
  MilterStub(const MilterStub&) = delete;
  MilterStub& operator=(const MilterStub&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  // address - the milter as Postfix's smtpd_milters names it.
  std::string address() const;
  std::vector<MilterSession> sessions() const;
  std::size_t connections() const noexcept { return connections_.load(); }

 private:
  void accept_loop();
  void serve(int fd);

  MilterStubOptions options_;
  int listen_fd_ = -1;
  int stop_r_ = -1, stop_w_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<std::size_t> connections_{0};
  mutable std::mutex mu_;
  std::vector<MilterSession> sessions_;
  std::vector<std::thread> workers_;  // guarded by mu_
  std::thread acceptor_;
};

}  // namespace dmarc::test
