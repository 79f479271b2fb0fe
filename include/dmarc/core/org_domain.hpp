// NAME
//   org_domain - organizational domains: the RFC 9989 DNS tree walk and the
//   RFC 7489 Public Suffix List method
// STANDARDS
//   RFC 9989 4.10 (DNS tree walk), 4.10.1 (policy discovery), 4.10.2
//   (identifying the Organizational Domain); RFC 7489 3.2 (PSL).
// DESCRIPTION
//   tree_walk_targets() lists the names a tree walk queries for a domain:
//   the domain itself, then, when it has 8 or more labels, the domain cut
//   to its last 7 labels, then one label less at a time down to the TLD;
//   never more than kMaxTreeWalkQueries names.
//   lookup_dmarc_at() queries _dmarc.<name> through the Resolver and keeps
//   the one DMARC record there, if exactly one (RFC 7489 6.6.3 step 2,
//   RFC 9989 4.10 step 2: several records count as none).
//   find_org_domain() determines the Organizational Domain of any domain
//   (author domain, SPF domain, DKIM d=) under the chosen method.
//   PublicSuffixList wraps a loaded libpsl context; loading it from a file
//   is I/O and lives in the adapters (adapters/psl_file.hpp).
// DIAGNOSTICS
//   A DNS temporary failure during a walk is reported (temp_error), never
//   guessed over: the caller turns it into a DMARC temperror.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/dmarc_record.hpp"
#include "dmarc/core/dns.hpp"

struct psl_ctx_st;

namespace dmarc {

enum class DmarcMode { Rfc9989, Rfc7489 };
std::string_view to_token(DmarcMode m) noexcept;

inline constexpr std::size_t kMaxTreeWalkQueries = 8;

class PublicSuffixList {
 public:
  // Takes ownership of CTX (from psl_load_file or psl_builtin copies).
  explicit PublicSuffixList(psl_ctx_st* ctx) noexcept;
  ~PublicSuffixList();
  PublicSuffixList(PublicSuffixList&&) noexcept;
  PublicSuffixList& operator=(PublicSuffixList&&) noexcept;
  PublicSuffixList(const PublicSuffixList&) = delete;
  PublicSuffixList& operator=(const PublicSuffixList&) = delete;

  // registrable_domain - public suffix plus one label (RFC 7489 3.2 step
  // 3), or nullopt when DOMAIN is itself a public suffix or invalid.
  // DOMAIN must be normalised (lower-case A-labels).
  std::optional<std::string> registrable_domain(std::string_view domain) const;
  // organizational_domain - the registrable domain, or DOMAIN itself when
  // it is a public suffix (RFC 7489 3.2: then the domain is its own).
  std::string organizational_domain(std::string_view domain) const;

 private:
  psl_ctx_st* ctx_ = nullptr;
};

std::vector<std::string> tree_walk_targets(std::string_view domain);

enum class LookupFinding {
  NoRecord,   // NXDOMAIN, NODATA, or no TXT starting with v=DMARC1
  Valid,      // exactly one DMARC record, and it parses
  Invalid,    // exactly one DMARC record, and it does not parse
  Multiple,   // more than one DMARC record: treated as none
  TempError,  // the lookup failed; try again later
};
std::string_view to_token(LookupFinding f) noexcept;

struct LookupStep {
  std::string name;  // the domain (without "_dmarc.")
  DnsStatus dns = DnsStatus::NoData;
  LookupFinding finding = LookupFinding::NoRecord;
  std::string text;  // the record text when one was found
  std::optional<DmarcRecord> record;
  std::string error;  // parse error or DNS diagnostic
};

LookupStep lookup_dmarc_at(Resolver& resolver, std::string_view domain);

struct OrgDomainResult {
  std::string org_domain;  // empty only on temp_error
  bool temp_error = false;
  std::vector<LookupStep> steps;  // queries made (tree walk only)
};

// find_org_domain - RFC 9989 4.10.2 with the tree walk, or RFC 7489 3.2
// with the PSL (PSL must then be non-null). DOMAIN must be normalised.
OrgDomainResult find_org_domain(Resolver& resolver, std::string_view domain, DmarcMode mode,
                                const PublicSuffixList* psl);

// org_domain_from_steps - the RFC 9989 4.10.2 rule applied to the results
// of a full tree walk from DOMAIN (steps in query order).
std::string org_domain_from_steps(std::string_view domain, const std::vector<LookupStep>& steps);

}  // namespace dmarc
