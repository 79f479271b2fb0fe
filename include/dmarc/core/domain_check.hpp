// NAME
//   domain_check - everything dmarc-check says about one domain
// STANDARDS
//   RFC 9989 4.10 (discovery), RFC 7489 7.1 / RFC 9990 (verifying external
//   report destinations: <domain>._report._dmarc.<destination>).
// DESCRIPTION
//   check_domain() discovers the DMARC record that applies to DOMAIN, finds
//   its organizational domain under both methods (tree walk and PSL), works
//   out what a message failing DMARC would get, and lists problems:
//   syntax, discarded tags, external rua/ruf destinations that have not
//   authorized reports, a record that never enforces (p=none), pct in RFC
//   9989 mode, and so on. All DNS goes through the Resolver; no other I/O.
#pragma once

#include <string>
#include <vector>

#include "dmarc/core/evaluate.hpp"

namespace dmarc {

enum class CheckSeverity { Info, Warning, Error };
std::string_view to_token(CheckSeverity s) noexcept;

struct CheckFinding {
  CheckSeverity severity;
  std::string message;
};

struct ExternalDestination {
  std::string tag;      // "rua" or "ruf"
  std::string address;  // mailbox
  std::string domain;   // its domain
  bool authorized = false;
  bool temp_error = false;
};

enum class CheckStatus { Found, NoRecord, Invalid, TempError };
std::string_view to_token(CheckStatus s) noexcept;

struct DomainCheck {
  std::string domain;
  DmarcMode mode = DmarcMode::Rfc9989;
  CheckStatus status = CheckStatus::NoRecord;
  Verdict failing;                    // the verdict for a message with no aligned pass
  std::string org_tree_walk;          // RFC 9989 organizational domain ("" on DNS failure)
  std::string org_psl;                // RFC 7489 organizational domain ("" without a PSL)
  std::vector<ExternalDestination> external;
  std::vector<CheckFinding> findings;
  // Worst severity among findings, for the exit code.
  CheckSeverity worst() const;
};

DomainCheck check_domain(Resolver& resolver, const std::string& domain, DmarcMode mode, const PublicSuffixList* psl);

}  // namespace dmarc
