// NAME
//   postfix_instance - a private Postfix on 127.0.0.1 for end-to-end tests
// SYNOPSIS
//   dmarc::test::PostfixOptions o;
//   o.milter = "inet:127.0.0.1:" + std::to_string(milter_port);
//   o.main_cf = {"header_checks = regexp:${config_directory}/header_checks"};
//   o.files["header_checks"] = "/^Subject: HOLD-ME/ HOLD\n";
//   dmarc::test::PostfixInstance postfix(o);
//
//   dmarc::test::SmtpOutcome out = dmarc::test::send_mail(postfix.port(), message);
//   std::vector<std::string> mail = postfix.wait_delivered(1);
//   std::vector<std::string> ar = dmarc::test::header_values(mail[0], "Authentication-Results");
//   std::vector<dmarc::test::QueuedMessage> held = postfix.held();
//   INFO(postfix.log());
// DESCRIPTION
//   A PostfixInstance is one Postfix mail system of its own: a fresh
//   directory /tmp/dmarc-postfix-XXXXXX holding
//     etc/        config_directory: generated main.cf and master.cf, plus
//                 PostfixOptions::files
//     queue/      queue_directory
//     data/       data_directory (owned by the postfix user)
//     mail/       a maildir: every accepted message, whatever its
//                 recipient, is delivered here by virtual(8)
//     maillog     maillog_file (postlogd; no syslog daemon needed)
//     master.out  what the master process wrote to stdout/stderr
//   smtpd listens on 127.0.0.1 on a port found free (port()), without
//   chroot, with XCLIENT allowed from 127.0.0.1 so that a test can present
//   itself as any client address, host name, HELO name or SASL login
//   (SmtpClient::xclient). Nothing is relayed and no DNS lookup is made
//   by Postfix (no peer name lookup; delivery is local).
//
//   The constructor creates the directories and the queue's
//   subdirectories, lists etc/ in alternate_config_directories of
//   /etc/postfix/main.cf (creating that file, with every inet service
//   disabled, when it does not exist; the edit is made under a lock and is
//   undone by the destructor), and runs Postfix's master(8) as a child
//   process (the equivalent of "postfix -c DIR start", minus the
//   daemonising). A watchdog process stops that master if the test
//   process dies without running destructors (a crash, ctest's SIGKILL on
//   timeout), so a killed test leaves no Postfix running; the next
//   instance removes such a test's directory. The constructor returns
//   once smtpd's port is listening. The destructor
//   stops Postfix (SIGTERM to the master, as "postfix stop" does, then
//   SIGKILL to its process group for stragglers) and removes the
//   directory, unless DMARC_TEST_KEEP_POSTFIX=1 is set (the directory is
//   then named on stderr, and left for a later run without it to remove). A Catch2 REQUIRE that fails throws, so an
//   instance on the stack is stopped whatever a test case does.
//
//   Milters: PostfixOptions::milter becomes smtpd_milters (and
//   non_smtpd_milters when milter_non_smtpd), in Postfix's notation:
//   "inet:127.0.0.1:PORT" or "unix:/path" (the smtpd runs as the postfix
//   user: a unix socket must be reachable by it).
//
//   SMTP AUTH: XCLIENT LOGIN=name makes the session authenticated; Postfix
//   then gives milters {auth_authen} = name and {auth_type} = "XCLIENT".
//   For a real AUTH command, set PostfixOptions::sasl: smtpd then offers
//   AUTH PLAIN (smtpd_sasl_type = dovecot) and the instance answers
//   Postfix's authentication requests itself (Dovecot auth protocol,
//   users and passwords from sasl_users), so no SASL package is needed;
//   milters then see {auth_type} = "PLAIN".
//
//   delivered() returns the delivered messages, oldest first, as virtual(8)
//   wrote them (Return-Path, Delivered-To and Received first; LF line
//   ends). queue() lists every message still in the queue and held() the
//   ones in the hold queue, from "postqueue -j". log() is the maillog.
// DIAGNOSTICS
//   The constructor throws std::runtime_error when not run as root, when
//   Postfix is not installed (packaging/install-deps.sh --test), or when
//   Postfix does not start (with the maillog and the master's output).
//   wait_delivered() throws std::runtime_error on timeout, with the log.
// SECURITY
//   Test code only. Must run as root (Postfix's master needs it).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace dmarc::test {

struct PostfixOptions {
  // smtpd_milters, e.g. "inet:127.0.0.1:8891" or "unix:/run/x.sock"; "" = none.
  std::string milter;
  std::string milter_default_action = "tempfail";  // accept | reject | tempfail | quarantine
  int milter_protocol = 6;
  bool milter_non_smtpd = false;  // non_smtpd_milters = the same milter (sendmail(1) submissions)
  // myhostname: the banner, the "by" of Received, {j} for milters.
  std::string hostname = "mx.e2e.test";
  // Extra main.cf lines, appended after the generated ones (a parameter
  // set again here wins). ${config_directory} names etc/.
  std::vector<std::string> main_cf;
  // Files written into etc/ before start (file name -> content), e.g.
  // lookup tables for header_checks or check_client_access.
  std::map<std::string, std::string> files;
  // AUTH PLAIN through the built-in Dovecot-protocol authentication server.
  bool sasl = false;
  std::map<std::string, std::string> sasl_users = {{"alice", "alice-secret"}};
  std::chrono::milliseconds startup_timeout{15000};
  std::string daemon_directory = "/usr/lib/postfix/sbin";
  std::string command_directory = "/usr/sbin";
};

struct QueuedRecipient {
  std::string address;
  std::string delay_reason;  // "" when none
};

// QueuedMessage - one entry of "postqueue -j".
struct QueuedMessage {
  std::string queue_name;  // "hold", "incoming", "active", "deferred", "maildrop"
  std::string queue_id;
  std::string sender;      // "" for the null sender (postqueue shows "MAILER-DAEMON")
  std::vector<QueuedRecipient> recipients;
  std::size_t message_size = 0;

  std::vector<std::string> recipient_addresses() const;
};

class SaslServer;

class PostfixInstance {
 public:
  PostfixInstance();
  explicit PostfixInstance(PostfixOptions options);
  ~PostfixInstance();
  PostfixInstance(const PostfixInstance&) = delete;
  PostfixInstance& operator=(const PostfixInstance&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  const std::string& host() const noexcept { return host_; }
  const std::string& dir() const noexcept { return dir_; }
  std::string config_dir() const { return dir_ + "/etc"; }
  std::string queue_dir() const { return dir_ + "/queue"; }
  std::string maildir() const { return dir_ + "/mail"; }
  const PostfixOptions& options() const noexcept { return options_; }

  // delivered - every delivered message, oldest first.
  std::vector<std::string> delivered() const;
  // wait_delivered - delivered() once it has at least N messages; throws
  // std::runtime_error (with the log) after TIMEOUT.
  std::vector<std::string> wait_delivered(std::size_t n,
                                          std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  // queue / held - "postqueue -c DIR -j": every queued message / those on hold.
  std::vector<QueuedMessage> queue() const;
  std::vector<QueuedMessage> held() const;
  // log - the maillog so far.
  std::string log() const;
  // postconf - the value of main.cf parameter NAME as this instance sees it
  // ("postconf -c DIR -h NAME"), for tests that check their setup.
  std::string postconf(const std::string& name) const;
  // sendmail - submit MESSAGE locally ("sendmail -C DIR -i -f SENDER --
  // RECIPIENTS": pickup, cleanup and non_smtpd_milters); throws on failure.
  void sendmail(const std::string& message, const std::string& sender,
                const std::vector<std::string>& recipients) const;

 private:
  void start_once();
  void stop() noexcept;
  void write_config();

  PostfixOptions options_;
  std::string host_ = "127.0.0.1";
  std::string dir_;
  std::uint16_t port_ = 0;
  pid_t master_pid_ = -1;
  pid_t watchdog_pid_ = -1;
  int watchdog_fd_ = -1;  // write end of the watchdog's pipe
  bool registered_ = false;
  std::unique_ptr<SaslServer> sasl_;
};

// header_values - the values of every header field NAME (case-insensitive)
// in the header section of MESSAGE, in order, unfolded (the line breaks of
// folding removed, the whitespace kept), without the leading blank after
// the colon. Works with LF or CRLF line ends.
std::vector<std::string> header_values(std::string_view message, std::string_view name);
// header_names - the field names of the header section, in order.
std::vector<std::string> header_names(std::string_view message);
// message_body - everything after the first empty line.
std::string message_body(std::string_view message);

}  // namespace dmarc::test
