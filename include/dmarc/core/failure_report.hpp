// NAME
//   failure_report - the AFRF failure report model: when one is due, and
//   the fields of its message/feedback-report part
// SYNOPSIS
//   if (dmarc::failure_report_due(verdict, facts)) {
//     dmarc::FeedbackReport f = dmarc::feedback_for(facts, verdict, ar_value, user_agent, arrival);
//     ... dmarc/report/failure_mail.hpp builds the mail around it
//   }
// STANDARDS
//   RFC 5965 3.1-3.2 (ARF fields), RFC 6591 3.1-3.2 (auth-failure, its
//   Auth-Failure, DKIM-* and SPF-DNS fields), RFC 7489 6.3 (fo=) and 7.3
//   (Auth-Failure: dmarc, Identity-Alignment), as RFC 9991 carries them on.
// DESCRIPTION
//   failure_report_due() is the fo= rule for one author domain's verdict:
//     0  (default) no mechanism gave an aligned pass
//     1  any mechanism did not give an aligned pass
//     d  a DKIM signature failed to verify, aligned or not (fail or
//        permerror: a signature that was there and did not verify)
//     s  SPF failed, aligned or not (fail or softfail)
//   Options combine (fo=1:d:s: any of them). Never for a verdict without a
//   record, or one found with psd=y (a public suffix domain's record).
//   identity_alignment() lists the mechanisms that gave an aligned pass:
//   "dkim", "spf", "dkim, spf" or "none".
//   FeedbackReport holds the fields of a message/feedback-report part, as
//   written and as read (parse keeps every other field in `other`).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dmarc/core/decide.hpp"
#include "dmarc/core/evaluate.hpp"

namespace dmarc {

struct FeedbackReport {
  std::string feedback_type = "auth-failure";
  std::string version = "1";
  std::string user_agent;
  std::string auth_failure;        // "dmarc"
  std::string identity_alignment;  // "none", "dkim", "spf", "dkim, spf"
  std::vector<std::string> authentication_results;
  std::string original_envelope_id;
  std::string original_mail_from;
  std::vector<std::string> original_rcpt_to;
  std::string arrival_date;  // RFC 5322 date-time text
  std::string source_ip;
  std::string reporting_mta;
  std::vector<std::string> reported_domain;
  std::vector<std::string> reported_uri;
  std::string delivery_result;  // delivered, spam, policy, reject, other
  std::string dkim_domain;
  std::string dkim_identity;
  std::string dkim_selector;
  std::string spf_dns;
  std::uint64_t incidents = 1;  // written when more than 1
  std::vector<std::pair<std::string, std::string>> other;  // any other field, as read
};

// A failure report waiting to be sent: what the milter queues in the
// store for "dmarc-report failures" (the milter never sends mail).
enum class FailureJobStatus { Pending, Sent, Dropped, Failed };
// Ruf: a failure report to the domain's ruf=. Local: a local forensic
// report of one of OwnDomains, for the operator (ForensicMaildir,
// ForensicMailTo), whatever the record's ruf and fo say.
enum class FailureJobKind { Ruf, Local };
std::string_view to_token(FailureJobKind k) noexcept;  // "ruf", "local"
std::string_view to_token(FailureJobStatus s) noexcept;
std::optional<FailureJobStatus> parse_failure_job_status(std::string_view s) noexcept;

struct FailureJob {
  std::int64_t id = 0;            // given by the store
  std::int64_t created = 0;       // epoch seconds
  std::string reported_domain;    // the author domain: the rate limit's key
  std::string policy_domain;      // where the record was found
  std::vector<std::string> ruf;   // the ruf URIs as published, with any !size
  FeedbackReport feedback;
  std::string original;           // the header section, or the whole message
  bool whole_message = false;
  FailureJobStatus status = FailureJobStatus::Pending;
  FailureJobKind kind = FailureJobKind::Ruf;
  std::string text;               // Local: the explanation (forensic_explanation)
  int attempts = 0;
  std::string last_error;
  std::int64_t updated = 0;
};

// spf_dns_domain - the domain of an SPF-DNS field that feedback_for left
// for the sender to complete ("txt : DOMAIN"), nullopt otherwise.
// spf_dns_value - the complete field: txt : DOMAIN : "RECORD" (RFC 6591
// 3.2, the record as a quoted-string).
std::optional<std::string> spf_dns_domain(const FeedbackReport& f);
std::string spf_dns_value(std::string_view domain, std::string_view record);

// rfc5322_date - epoch seconds T as an RFC 5322 3.3 date-time in UTC,
// "Mon, 07 Dec 2026 10:00:00 +0000".
std::string rfc5322_date(std::int64_t t);

// failure_jobs - the failure reports a message's verdicts ask for
// (failure_report_due, a ruf= to send to; p=none only with ON_NONE), each
// with its fields (feedback_for) and ORIGINAL, the header section, at NOW.
std::vector<FailureJob> failure_jobs(const MessageFacts& facts, const MessageVerdict& verdict,
                                     std::string_view original, bool on_none, std::string_view user_agent,
                                     std::int64_t now);

// is_own_domain - DOMAIN is one of OWN (OwnDomains: domains, lower case)
// or a subdomain of one.
bool is_own_domain(const std::vector<std::string>& own, std::string_view domain) noexcept;

// local_forensic_due - a local forensic report is kept for a verdict of
// an own domain that failed DMARC, whatever was done with the message:
// rejected, quarantined, or let through only because of p=none, t=y, pct
// sampling or a local override - what p=reject would reject.
bool local_forensic_due(const Verdict& v) noexcept;

// forensic_explanation - the text part of a local forensic report: what
// an admin asks about the message (source, HELO, MAIL FROM or "a
// null-sender message: a bounce or auto-reply", RCPT TO, the SPF result
// with its domain and why, each DKIM signature with d=, s= and why it
// failed, why alignment failed, and what it gets under p=quarantine and
// p=reject). PTR is the checked name of the source ("" unknown).
std::string forensic_explanation(const MessageFacts& facts, const Verdict& v, const MessageDecision& d);

// local_forensic_jobs - the local forensic jobs of a message (OWN the
// OwnDomains), with feedback_for's fields and forensic_explanation.
std::vector<FailureJob> local_forensic_jobs(const MessageFacts& facts, const MessageVerdict& verdict,
                                            const std::vector<std::string>& own, std::string_view original,
                                            std::string_view user_agent, std::int64_t now);

// feedback_field_list - the fields of F as (name, value) in the order of
// RFC 5965 3.1/3.2 and RFC 6591 3.1, empty ones left out, Incidents only
// when more than 1, then F.other. Values are as given (the writer makes
// them one line).
std::vector<std::pair<std::string, std::string>> feedback_field_list(const FeedbackReport& f);
// apply_feedback_field - field NAME: VALUE (unfolded) read into F; names
// are case-insensitive, a field this model lacks goes to F.other. An error
// for a value that cannot be what the field holds (Incidents).
std::optional<std::string> apply_feedback_field(FeedbackReport& f, std::string_view name, std::string value);

// FailureRateLimit - RFC 9991's rate limit on failure reports: at most
// PER_DOMAIN reports per reported domain and TOTAL in all per clock hour
// (UTC, epoch seconds / 3600). admit() counts what it lets through;
// preload() adds what was sent earlier in the same hour (by another run):
// to DOMAIN's count, or to the total when DOMAIN is "".
class FailureRateLimit {
 public:
  // PERIOD: the window in seconds (an hour; a day for ForensicMaxPerDay).
  FailureRateLimit(std::uint64_t per_domain, std::uint64_t total, std::int64_t period = 3600)
      : per_domain_(per_domain), total_(total), period_(period) {}
  bool admit(std::string_view domain, std::int64_t now);
  void preload(std::string_view domain, std::int64_t now, std::uint64_t sent);

 private:
  void roll(std::int64_t now);
  std::uint64_t per_domain_, total_;
  std::int64_t period_;
  std::int64_t hour_ = -1;  // the current window
  std::uint64_t sent_total_ = 0;
  std::vector<std::pair<std::string, std::uint64_t>> sent_;  // per domain, this hour
};

// failure_report_due - whether the verdict's record asks for a failure
// report for this message (DESCRIPTION).
bool failure_report_due(const Verdict& v, const MessageFacts& facts) noexcept;

// identity_alignment - the Identity-Alignment value for V.
std::string identity_alignment(const Verdict& v);

// delivery_result - the Delivery-Result for what was done with the
// message (RFC 5965 3.2 / RFC 6591): accept -> delivered, quarantine ->
// spam (or policy when held), reject -> reject, tempfail -> other.
std::string_view delivery_result(Action a, bool held) noexcept;

// feedback_for - the report's fields for one author domain's verdict.
// AR is our Authentication-Results value; ARRIVAL the RFC 5322 date text.
FeedbackReport feedback_for(const MessageFacts& facts, const Verdict& v, const MessageDecision& d,
                            std::string_view ar, std::string_view user_agent, std::string_view arrival);

}  // namespace dmarc
