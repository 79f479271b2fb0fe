// NAME
//   decide - the whole per-message decision: facts in, verdict out
// SYNOPSIS
//   dmarc::MessageFacts f;            // what the MTA and the checks gave
//   f.client_ip = "192.0.2.7"; f.mail_from = "a@example.com"; ...
//   dmarc::MessageVerdict v = dmarc::decide(resolver, f, options);
//   // v.decision.action, v.ar_value, v.log_line, v.verdicts[i] ...
// STANDARDS
//   RFC 9989 4.4 (author domain: RFC5322.From), 5.3 (policy enforcement
//   is the receiver's), RFC 7489 6.6.1 (several From domains), RFC 5322
//   3.6 (header field counts), RFC 8601 (Authentication-Results), RFC 9990
//   (override reasons), RFC 7208 2.4 / RFC 6376 (the SPF and DKIM results
//   are the caller's, checked before).
// DESCRIPTION
//   decide() takes the facts of one message - client address and name,
//   HELO, MAIL FROM, RCPT TO, the From fields and header counts, the SPF
//   result with its scope, every DKIM result - and returns everything an
//   aggregate row, a failure report and the log line need:
//     checked / skip_reason   not checked at all (IgnoreHosts, SMTP AUTH,
//                             no client address): exemption()
//     author_domains          from the From fields: parsed strictly (RFC
//                             5322); a field that does not parse is read
//                             leniently (lenient_from_domains) and every
//                             domain a reader could take is evaluated
//                             (logged as from_note=malformed:...); no
//                             domain at all is BadFromAction; a group that
//                             names no mailbox (RFC 6854) has no author
//                             and nothing to evaluate (dmarc=none)
//     verdicts                one Verdict per author domain: result,
//                             discovery method, record as published, the
//                             requested disposition (after t= and pct) and
//                             the applied one, with override reasons:
//                             trusted_forwarder (TrustedForwarders),
//                             local_policy (RejectFailures no)
//     decision                the message's action (accept, quarantine,
//                             reject, tempfail), reply and log reason
//     ar_value                our Authentication-Results field body
//     quarantine_header       the header to add, when quarantined
//     log_line                qid= ip= from= spf= dkim= dmarc= policy=
//                             disposition= action= reason= ...
//   DNS goes through RESOLVER only (DMARC records, organizational domains,
//   np's A query, forwarder PTR checks); decide() does no other I/O. The
//   session (src/milter/session.cpp) and --eval are drivers of it.
// SECURITY
//   Every fact is untrusted text: values reaching the A-R field are
//   escaped (auth_results.hpp), the log line is sanitized (sanitize_log),
//   DKIM results written are capped at max_dkim_reported.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dmarc/core/dns.hpp"
#include "dmarc/core/evaluate.hpp"
#include "dmarc/core/forwarders.hpp"
#include "dmarc/core/ip_net.hpp"
#include "dmarc/core/message_policy.hpp"

namespace dmarc {

struct SpfFacts {
  AuthResult result = AuthResult::None;
  SpfScope scope = SpfScope::MailFrom;
  std::string domain;    // the MAIL FROM domain, or the HELO name
  std::string identity;  // local@domain, postmaster@helo, or the HELO name
  std::string problem;   // why, for temperror/permerror/none
  SpfInput input() const { return SpfInput{result, domain, scope}; }
};

struct DkimFacts {
  AuthResult result = AuthResult::None;
  std::string domain;    // d=, lower case
  std::string selector;  // s=
  std::string b_prefix;  // header.b
  std::string reason;    // why it is not a pass
  unsigned key_bits = 0;
  bool body_length = false;  // l= present
  DkimInput input() const { return DkimInput{result, domain, selector}; }
};

// The RFC 5322 3.6 header fields counted for RequiredHeaders, in this order.
inline constexpr std::array<std::string_view, 8> kCountedHeaders = {"From",   "Date",     "To",        "Cc",
                                                                    "Subject", "Sender", "Reply-To", "Message-ID"};

struct MessageFacts {
  std::string queue_id;
  std::string client_ip;    // "" when the MTA gave none (local submission)
  std::string client_name;  // as the MTA resolved it
  std::string helo;
  std::string mail_from;    // without angle brackets; "" for <>
  std::vector<std::string> rcpt_to;
  bool authenticated = false;  // SMTP AUTH ({auth_authen} set)
  std::vector<std::string> from_fields;  // field bodies, as received
  std::array<int, kCountedHeaders.size()> header_counts{};
  std::optional<SpfFacts> spf;  // absent: not checked
  std::vector<DkimFacts> dkim;  // one per DKIM-Signature, in header order
  std::size_t dkim_omitted = 0; // signatures beyond those listed
  std::size_t removed_ar = 0;   // forged Authentication-Results removed
  bool list_id = false;         // a List-Id field (RFC 2919): mail from a mailing list
};

struct DecideOptions {
  EvaluationOptions evaluation;
  EnforcementSettings enforcement;
  const IpNetList* ignore_hosts = nullptr;      // IgnoreHosts
  bool ignore_authenticated = true;             // IgnoreAuthenticatedClients
  const ForwarderList* forwarders = nullptr;    // TrustedForwarders
  std::string authserv_id;
  std::string quarantine_header = "X-DMARC-Quarantine";
  std::size_t max_dkim_reported = 10;           // DKIMMaxSignatures: dkim= results written
};

// exemption - why a message from this client is not checked at all
// ("local_client", "ignored_host", "authenticated"), nullopt when it is.
std::optional<std::string> exemption(std::string_view client_ip, bool authenticated, const DecideOptions& o);

// The author domains of a message, or why there are none.
struct AuthorReading {
  std::vector<std::string> domains;     // distinct, in order
  std::optional<FromProblem> problem;   // set: BadFromAction (or a reject rule) applies
  bool no_author = false;               // only empty groups: nothing to evaluate
  std::string malformed;                // error token of the first field read leniently
};
AuthorReading read_authors(const std::vector<std::string>& from_fields,
                           const std::array<int, kCountedHeaders.size()>& counts, const EnforcementSettings& s);

struct MessageVerdict {
  bool checked = true;
  std::string skip_reason;
  AuthorReading authors;
  std::vector<Verdict> verdicts;  // one per author domain
  std::optional<ForwarderMatch> forwarder;
  MessageDecision decision;
  std::optional<std::string> ar_value;
  std::optional<std::pair<std::string, std::string>> quarantine_header;  // name, value
  std::string log_line;
};

// decide - the verdict for one message. Never throws except bad_alloc.
MessageVerdict decide(Resolver& resolver, const MessageFacts& facts, const DecideOptions& options);

// sanitize_log - untrusted text for a log line: printable ASCII, no
// spaces or '=' (so fields stay parseable), capped at MAX bytes.
std::string sanitize_log(std::string_view text, std::size_t max = 128);

// domain_of - the domain part of an address (after the last '@').
std::string domain_of(std::string_view address);

}  // namespace dmarc
