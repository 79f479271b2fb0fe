// NAME
//   readiness_out - the readiness report as text and as JSON
// DESCRIPTION
//   readiness_text() is what "dmarc-report readiness DOMAIN" prints: the
//   period, the policy now, the sources table (IP, PTR, class, messages,
//   aligned pass), the projection under p=quarantine and p=reject, the
//   recommendation, and the fixes of the sources to fix first.
//   readiness_json() has stable keys: domain, begin, end, days, policy,
//   messages, aligned_pass, sources[] (ip, ptr, ptr_org, class, messages,
//   aligned_pass, spf_domains, dkim_domains, fix), projection {quarantine, reject} each {affected,
//   legitimate}, legitimate_at_risk, recommendation; written with
//   nlohmann::json.
//   readiness_html() is one self-contained page (no external asset, no
//   script): the summary, an inline SVG chart of the daily aligned-pass
//   rate, the sources table and the fixes, written with libxml2's
//   xmlTextWriter (XHTML), every text escaped by it.
#pragma once

#include <string>

#include "dmarc/core/readiness.hpp"

namespace dmarc {

std::string readiness_text(const Readiness& r);
std::string readiness_json(const Readiness& r);
std::string readiness_html(const Readiness& r);

}  // namespace dmarc
