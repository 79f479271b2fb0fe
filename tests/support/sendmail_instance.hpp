// NAME
//   sendmail_instance - a private Sendmail on 127.0.0.1 for end-to-end tests
// SYNOPSIS
//   dmarc::test::enter_private_network({"192.0.2.10", "203.0.113.9"});  // first, on the main thread
//
//   dmarc::test::SendmailOptions o;
//   o.milter = "inet:" + std::to_string(milter_port) + "@127.0.0.1";
//   o.sasl_users = {{"alice", "alice-secret"}};
//   dmarc::test::SendmailInstance sendmail(o);
//
//   dmarc::test::SmtpMessage m;
//   m.source = "192.0.2.10";                       // the client address Sendmail sees
//   m.rcpt_to = {"bob@rcpt.example"};
//   dmarc::test::SmtpOutcome out = dmarc::test::send_mail(sendmail.port(), m);
//   std::vector<std::string> mail = sendmail.wait_delivered(1);
//   std::vector<dmarc::test::SendmailQueued> q = sendmail.quarantined();
//   INFO(sendmail.log());
// DESCRIPTION
//   A SendmailInstance is one Sendmail of its own, run from the unpacked
//   Debian packages (sendmail-bin, sendmail-cf, sendmail-base; they
//   conflict with postfix and are never installed) under
//   $DMARC_TEST_UNPACKED/root (default /var/cache/dmarc-milter-tests/root,
//   where packaging/install-deps.sh --test puts them). Its state is a fresh
//   directory DMARC_BINARY_DIR/sendmail-test/sm-XXXXXX (in the build tree:
//   below a world-writable directory such as /tmp, Sendmail's file-safety
//   checks refuse the alias and map files) holding
//     test.mc, test.cf  the generated .mc and the .cf m4 made of it
//     queue/            QUEUE_DIR (mode 700)
//     out/              every delivered message, one file per recipient
//                       (RCPT.PID, written by deliver.sh)
//     aliases(.db), mailertable(.db), service.switch, etc-hosts
//     etc/              hosts and resolv.conf seen by Sendmail
//     sasl2/            Sendmail.conf for Cyrus SASL, sasldb2 beside it
//     dev/              the /dev Sendmail sees: null, zero, random,
//                       urandom and log, a datagram socket this object
//                       reads (Sendmail logs with syslog(3))
//     maillog           what Sendmail logged
//   Sendmail listens on 127.0.0.1 on a port found free (port()), with
//   "-bD" (a daemon in the foreground), in a mount namespace of its own
//   (unshare -m) where /etc/hosts names the host with a domain, and
//   /etc/resolv.conf points at 127.0.0.1:53 (nothing answers, so every DNS
//   lookup fails fast): without that Sendmail waits for DNS to qualify its
//   own name and never listens. Its $j is SendmailOptions::hostname.
//
//   Delivery: every domain of relay_domains is routed by a mailertable to
//   a "file" mailer (deliver.sh, run as Sendmail's unprivileged default
//   user) that writes the message into out/. local_domains go into class
//   w (Sendmail's local names, where {mail_addr} and {rcpt_addr} lose
//   their domain); aliases can send such local names on to a relay domain.
//
//   The milter: SendmailOptions::milter becomes INPUT_MAIL_FILTER(
//   `dmarc-milter', `S=MILTER, F=FLAGS, T=TIMEOUTS') in Sendmail's
//   notation ("inet:PORT@127.0.0.1"); milter_macros adds
//   confMILTER_MACROS_* lines (unset: Sendmail's defaults).
//
//   SMTP AUTH: with sasl_users, Sendmail offers AUTH PLAIN LOGIN
//   (confAUTH_MECHANISMS, TRUST_AUTH_MECH) through Cyrus SASL with an
//   auxprop sasldb made by saslpasswd2 (package sasl2-bin) in sasl2/;
//   Sendmail.conf is found through an overlay mount on the SASL plugin
//   directory in Sendmail's namespace. Milters then see {auth_type} =
//   "PLAIN" and {auth_authen} = the login.
//
//   A watchdog process stops Sendmail (SIGTERM, then SIGKILL to its
//   process group) if the test process dies without running destructors
//   (a crash, ctest's SIGKILL on timeout), so a killed test leaves no
//   Sendmail running; the next instance removes such a test's directory.
//   The constructor returns once the port is listening. The destructor
//   stops Sendmail the same way and removes the directory, unless
//   DMARC_TEST_KEEP_SENDMAIL=1 is set (the directory is then named on
//   stderr).
//
//   enter_private_network() moves the calling thread (and every thread
//   and process started by it afterwards) into a new network namespace
//   with lo up and the given IPv4 addresses on it (/32): a client bound to
//   one of them (SmtpMessage::source) reaches 127.0.0.1 and is seen with
//   that address. Sendmail has no XCLIENT; this is how a test presents a
//   non-loopback client. Call it once, on the main thread, before any
//   server (NSD, the milter, Sendmail) is started.
//
//   delivered() returns the delivered messages, oldest first, as
//   deliver.sh wrote them (LF line ends). mailq() is the text of
//   "sendmail -C test.cf -bp" (with quarantined, "-bp -qQ": the
//   quarantined messages only); quarantined() parses it.
// DIAGNOSTICS
//   The constructor throws std::runtime_error when not run as root, when
//   the unpacked tree is missing, or when Sendmail does not start (with its
//   log and output). wait_delivered() throws on timeout, with the log.
// SECURITY
//   Test code only. Must run as root (Sendmail's daemon, mount namespaces).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace dmarc::test {

struct SendmailOptions {
  // INPUT_MAIL_FILTER's S=, e.g. "inet:8895@127.0.0.1"; "" = no milter.
  std::string milter;
  std::string milter_flags = "T";                  // F=: T tempfail, R reject, "" accept when unreachable
  std::string milter_timeouts = "S:30s;R:60s;E:5m";  // T=
  // confMILTER_MACROS_CONNECT etc.: stage (connect, helo, envfrom, envrcpt,
  // data, eoh, eom) -> the macro list; a stage not given keeps Sendmail's.
  std::map<std::string, std::string> milter_macros;
  std::string hostname = "mx.sm.example";          // confDOMAIN_NAME ($j)
  std::vector<std::string> relay_domains = {"rcpt.example"};  // delivered into out/
  std::vector<std::string> local_domains;                     // class w
  std::map<std::string, std::string> aliases = {{"postmaster", "root"}};
  // Users for AUTH PLAIN/LOGIN; empty = no AUTH offered.
  std::map<std::string, std::string> sasl_users;
  std::vector<std::string> mc_lines;  // extra .mc lines, before MAILER(smtp)
  std::string unpacked;               // the tree; "" = $DMARC_TEST_UNPACKED/root or the default
  std::chrono::milliseconds startup_timeout{20000};
};

// SendmailQueued - one entry of "sendmail -bp".
struct SendmailQueued {
  std::string queue_id;
  std::string sender;
  std::string quarantine_reason;  // "" when not quarantined
  std::vector<std::string> recipients;
};

class SendmailInstance {
 public:
  explicit SendmailInstance(SendmailOptions options);
  ~SendmailInstance();
  SendmailInstance(const SendmailInstance&) = delete;
  SendmailInstance& operator=(const SendmailInstance&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  const std::string& dir() const noexcept { return dir_; }
  std::string cf_path() const { return dir_ + "/test.cf"; }
  std::string mc() const;
  const SendmailOptions& options() const noexcept { return options_; }
  pid_t pid() const noexcept { return pid_; }

  std::vector<std::string> delivered() const;
  std::vector<std::string> wait_delivered(std::size_t n,
                                          std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  // mailq - "sendmail -C test.cf -bp" (-qQ: the quarantined queue), run in
  // Sendmail's namespace; throws on failure.
  std::string mailq(bool quarantined = false) const;
  std::vector<SendmailQueued> queue() const;
  std::vector<SendmailQueued> quarantined() const;
  std::string log() const;
  // wait_log - until TEXT is in the log (true) or TIMEOUT passes: Sendmail
  // logs some lines (delivery, quarantine) after the effect a test sees.
  bool wait_log(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  // run - a Sendmail program of the unpacked tree (e.g. "sendmail",
  // "makemap") with ARGS, in Sendmail's namespace; its output (stdout and
  // stderr). STATUS gets the exit status.
  std::string run(const std::string& program, const std::vector<std::string>& args, int& status,
                  const std::string& input = {}) const;

 private:
  void start_once();
  void stop() noexcept;
  void write_files();
  void log_loop();

  SendmailOptions options_;
  std::string root_;  // the unpacked tree
  std::string dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
  pid_t watchdog_pid_ = -1;
  int watchdog_fd_ = -1;
  int log_fd_ = -1;
  std::atomic<bool> log_stop_{false};
  std::thread log_thread_;
};

// enter_private_network - see DESCRIPTION; throws std::runtime_error.
// Calling it again adds no namespace (the first call's stays).
void enter_private_network(const std::vector<std::string>& addresses);

}  // namespace dmarc::test
