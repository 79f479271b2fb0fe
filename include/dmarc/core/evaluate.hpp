// NAME
//   evaluate - the DMARC decision for one author domain
// STANDARDS
//   RFC 9989 4.4 (identifier alignment), 4.10 (policy discovery), 4.10.2
//   (organizational domain per identifier), 5.3 (policy enforcement),
//   4.7 (p, sp, np, t); RFC 7489 6.6 (PSL mode, pct sampling 6.6.4);
//   RFC 9990 (override reason names); RFC 8601 2.7.x (result names).
// DESCRIPTION
//   evaluate_dmarc() takes the author domain (from the RFC5322.From header),
//   the SPF result with its domain and the DKIM results with their d=, and
//   decides, through the Resolver only:
//     result       pass | fail | none | temperror | permerror
//     policy       which tag applied (p, sp or np) and its value
//     requested_disposition
//                  what the publisher asks for this message after t=y
//                  (RFC 9989 mode) and pct sampling (RFC 7489 mode)
//     disposition  what is applied: the requested disposition until a
//                  local override (trusted forwarder, RejectFailures no,
//                  ...) is added by the caller with apply_override()
//   The function does no I/O of its own and never throws except bad_alloc.
// NOTES
//   - Alignment (RFC 9989 4.4.1, 4.4.2): strict needs identical domains;
//     relaxed needs equal Organizational Domains, each found by its own
//     tree walk (or the PSL in RFC 7489 mode). An identifier equal to the
//     author domain aligns without any further DNS query: the author's
//     Organizational Domain is walked for only when an identifier that
//     differs from it could align relaxed (same last label), so a DNS
//     failure above the policy record cannot spoil an exact match.
//   - Non-existent author domain (np, RFC 9989 4.7): an A query answered
//     NXDOMAIN. Only in RFC 9989 mode; a DNS failure counts as existing.
//   - A temporary DNS failure anywhere that could change the outcome gives
//     temperror, never fail (RFC 9989: a DNS error is neither pass nor
//     fail; RFC 8601 2.7.1): policy discovery, the Organizational Domain
//     of an identifier that might align, and an SPF or DKIM temperror for
//     an identifier that would have aligned (the key lookup of a d= under
//     the author's Organizational Domain timed out), when nothing else
//     gives an aligned pass. Invalid records only (and no valid one) give
//     permerror.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/dmarc_record.hpp"
#include "dmarc/core/dns.hpp"
#include "dmarc/core/org_domain.hpp"

namespace dmarc {

// Results of the underlying mechanisms (RFC 7208 2.6, RFC 8601 2.7.1).
enum class AuthResult { Pass, Fail, SoftFail, Neutral, None, TempError, PermError, Policy };
std::string_view to_token(AuthResult r) noexcept;
std::optional<AuthResult> parse_auth_result(std::string_view s) noexcept;

enum class SpfScope { MailFrom, Helo };

struct SpfInput {
  AuthResult result = AuthResult::None;
  std::string domain;  // the MAIL FROM domain, or the HELO name (scope Helo)
  SpfScope scope = SpfScope::MailFrom;
};

struct DkimInput {
  AuthResult result = AuthResult::None;
  std::string domain;  // d=
  std::string selector;
};

struct MessageAuth {
  std::string author_domain;  // normalised RFC5322.From domain
  std::optional<SpfInput> spf;
  std::vector<DkimInput> dkim;
};

// random_percent returns a value in [0, 100); pct sampling applies the
// policy when it is below pct (RFC 7489 6.6.4). Inject a fixed source in tests.
using RandomPercent = std::function<int()>;

struct EvaluationOptions {
  DmarcMode mode = DmarcMode::Rfc9989;
  const PublicSuffixList* psl = nullptr;  // required in RFC 7489 mode
  RandomPercent random_percent;           // required when a record has pct < 100 (7489 mode)
};

enum class DmarcResult { Pass, Fail, None, TempError, PermError };
std::string_view to_token(DmarcResult r) noexcept;

// Per mechanism: aligned pass, passed but not aligned, did not pass.
enum class Alignment { Pass, Fail, None, TempError };
std::string_view to_token(Alignment a) noexcept;

enum class PolicySource { None, Domain, Subdomain, NonExistent };  // none, p, sp, np
std::string_view to_token(PolicySource s) noexcept;  // "none", "p", "sp", "np"

enum class Disposition { None, Quarantine, Reject };
std::string_view to_token(Disposition d) noexcept;

// RFC 9990 PolicyOverrideType names (sampled_out and forwarded: RFC 7489).
enum class OverrideReason { Forwarded, SampledOut, TrustedForwarder, MailingList, LocalPolicy, PolicyTestMode, Other };
std::string_view to_token(OverrideReason r) noexcept;

// One reason the applied disposition differs from the published policy,
// with its comment (RFC 7489 appendix C / RFC 9990 PolicyOverrideReason).
struct PolicyOverride {
  OverrideReason reason = OverrideReason::Other;
  std::string comment;
  bool operator==(OverrideReason r) const noexcept { return reason == r; }
};
inline std::string_view to_token(const PolicyOverride& o) noexcept { return to_token(o.reason); }

// How the policy record was found (RFC 9990 discovery_method).
enum class DiscoveryMethod { TreeWalk, Psl };
std::string_view to_token(DiscoveryMethod m) noexcept;  // "treewalk", "psl"

struct Verdict {
  DmarcResult result = DmarcResult::None;
  std::string author_domain;
  std::string org_domain;       // of the author domain, when it was needed (relaxed alignment)
  std::string record_domain;    // where the applicable record was found
  DiscoveryMethod discovery = DiscoveryMethod::TreeWalk;
  std::optional<DmarcRecord> record;
  std::vector<LookupStep> steps;  // policy discovery queries, in order
  PolicySource policy_source = PolicySource::None;
  Policy requested = Policy::None;  // value of the tag that applied
  // What the policy asks for this message after t= and pct: the
  // policy.dmarc of RFC 8601 (IANA: "evaluated DMARC policy applied/to be
  // applied after policy options ... have been processed"). For a pass it
  // is what a failure would have got.
  Disposition policy_disposition = Disposition::None;
  // What the publisher asks for this message: policy_disposition for a
  // failure, none for a pass (RFC 9989 5.3).
  Disposition requested_disposition = Disposition::None;
  // What is applied after local overrides (apply_override).
  Disposition disposition = Disposition::None;
  std::vector<PolicyOverride> overrides;
  Alignment spf_alignment = Alignment::None;
  Alignment dkim_alignment = Alignment::None;
  std::string spf_domain;
  std::string dkim_domain;    // the d= that gave the aligned pass, or first passing d=
  std::string dkim_selector;
  bool author_domain_exists = true;
  bool sampled = true;        // false when pct sampling exempted the message
  std::string why;            // a short explanation for logs
};

Verdict evaluate_dmarc(Resolver& resolver, const MessageAuth& auth, const EvaluationOptions& opts);

// lower_disposition - one step down (reject -> quarantine -> none), as t=y
// (RFC 9989 4.7) and pct sampling (RFC 7489 6.6.4) ask.
Disposition lower_disposition(Disposition d) noexcept;
Disposition to_disposition(Policy p) noexcept;

// apply_override - a local decision (trusted forwarder, local policy...)
// sets the applied disposition to none and records the reason with its
// comment (RFC 9990).
void apply_override(Verdict& v, OverrideReason reason, std::string comment = {});

}  // namespace dmarc
