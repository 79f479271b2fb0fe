// NAME
//   session - one SMTP connection as the milter sees it, without libmilter
// DESCRIPTION
//   Session gathers the facts of each message as the MTA delivers them
//   (client, HELO, envelope, From and Authentication-Results fields,
//   header counts, the SPF result, the streaming DKIM verifier) and at end
//   of message hands them to the core's decide() (dmarc/core/decide.hpp),
//   which makes the whole decision. The Outcome adds the header edits
//   (forged Authentication-Results to remove). The libmilter callbacks
//   (milter.cpp) and the offline --eval path (eval.cpp) both drive this
//   class, so they behave the same.
//
//   Order of the steps, as the MTA calls them:
//     connect -> helo* -> (envfrom -> rcpt* -> header* -> eoh -> body* -> eom | abort)*
//   SPF is checked at envfrom (RFC 7208 2.4: MAIL FROM, or HELO for the
//   null reverse-path); DKIM is fed as data arrives; DMARC is decided at
//   eom, when every input exists. All the DNS lookups of one message share
//   one time budget (DNSMessageTimeout, dmarc/adapters/dns_budget.hpp).
// ERRORS
//   Methods may throw (std::bad_alloc, or a bug); the glue catches and
//   applies InternalErrorAction. Bad input is never an exception.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/adapters/dkim.hpp"
#include "dmarc/adapters/dns_budget.hpp"
#include "dmarc/adapters/spf.hpp"
#include "dmarc/core/decide.hpp"
#include "dmarc/core/evaluate.hpp"
#include "dmarc/core/forwarders.hpp"
#include "dmarc/core/message_policy.hpp"
#include "engine.hpp"

namespace dmarc::milter {

struct HeaderEdit {
  // Delete the INDEX-th (1-based) field named NAME (smfi_chgheader NULL).
  std::string name;
  int index = 0;
};

// Outcome - the core's verdict, and what the MTA glue needs besides.
struct Outcome : MessageVerdict {
  MessageFacts facts;                      // what the verdict was made from
  std::vector<HeaderEdit> deletions;       // forged A-R fields, highest index first
  std::optional<SpfCheckResult> spf;
  std::vector<DkimSignatureResult> dkim;
  // The header section as received (LF line ends), kept only when
  // FailureReports is on, at most Session::kMaxKeptHeaderBytes.
  std::string header_section;
  // The body as received, kept only with FailureReportContent message, at
  // most Session::kMaxKeptBodyBytes.
  std::string body_section;
};

class Session {
 public:
  explicit Session(std::shared_ptr<const Engine> engine);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // set_engine - the engine for the next message (after a reload).
  void set_engine(std::shared_ptr<const Engine> engine);
  const Engine& engine() const { return *engine_; }

  // connect - HOSTNAME as the MTA resolved it; IP the client address
  // text, empty when the client has none (local submission).
  void connect(std::string_view hostname, std::string_view ip);
  void helo(std::string_view name);
  // envfrom - ADDR without angle brackets ("" for <>); AUTH_AUTHEN the
  // SMTP-AUTH login ({auth_authen}), empty when none.
  void envfrom(std::string_view addr, std::string_view auth_authen, std::string_view queue_id = {});
  // rcpt - one RCPT TO address without angle brackets.
  void rcpt(std::string_view addr);
  void header(std::string_view name, std::string_view value);
  void eoh();
  void body(std::string_view chunk);
  // wants_body - false when the body cannot change the outcome (not
  // checked, or no DKIM-Signature): the glue may skip it.
  bool wants_body() const;
  Outcome eom(std::string_view queue_id);
  // abort - forget the message, keep the connection.
  void abort();

  const std::string& client_ip() const { return ip_; }

 private:
  void reset_message();
  void ensure_dkim();

  static constexpr std::size_t kMaxRcpts = 1000;

  std::shared_ptr<const Engine> engine_;
  std::shared_ptr<const Engine> spf_engine_;  // the engine spf_ was made for
  std::unique_ptr<SpfVerifier> spf_;

  // connection
  std::string hostname_, ip_, helo_;
  // message
  bool in_message_ = false;
  bool checked_ = true;
  MessageFacts facts_;
  DnsTimeBudget dns_budget_{std::chrono::seconds(0)};
  std::optional<SpfCheckResult> spf_result_;
  std::size_t ar_count_ = 0;
  std::vector<int> forged_ar_;
  std::size_t dkim_signature_fields_ = 0;
  std::unique_ptr<DkimMessage> dkim_;
  bool dkim_failed_ = false;
  // Header fields seen before the first DKIM-Signature (see header()).
  static constexpr std::size_t kMaxPendingHeaderBytes = 256 * 1024;
  std::vector<std::pair<std::string, std::string>> pending_headers_;
  std::size_t pending_bytes_ = 0;
  std::string job_id_;
  // For failure reports (FailureReports yes): the header section, bounded.
 public:
  static constexpr std::size_t kMaxKeptHeaderBytes = 64 * 1024;
  static constexpr std::size_t kMaxKeptBodyBytes = 1024 * 1024;

 private:
  bool keep_headers_ = false;
  bool keep_body_ = false;
  std::string header_section_;
  std::string body_section_;
  // The milter's own time on this message so far (metrics: latency).
  std::chrono::steady_clock::duration busy_{};
};

using dmarc::sanitize_log;

}  // namespace dmarc::milter
