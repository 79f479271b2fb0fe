// readiness_out.cpp - the readiness report, text and JSON (dmarc/report/readiness_out.hpp)
#include "dmarc/report/readiness_out.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace dmarc {

namespace {

std::string percent(std::uint64_t part, std::uint64_t whole) {
  if (whole == 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
  return buf;
}

// printable - untrusted text (DNS names) for a terminal: printable ASCII,
// anything else '?'.
std::string printable(std::string s) {
  for (auto& c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) c = '?';
  }
  return s;
}

std::string pad(std::string s, std::size_t n) {
  if (s.size() < n) s.append(n - s.size(), ' ');
  return s;
}

}  // namespace

std::string readiness_text(const Readiness& r) {
  std::string t;
  const std::string span = format_day(r.period.first_day()) + " to " + format_day(r.period.last_day());
  t += "Readiness of " + r.domain + ", " + span + " (" + std::to_string(r.days) + " day(s) with data)\n";
  t += "Policy now:      p=" + std::string(to_token(r.current)) + "\n";
  t += "Messages:        " + std::to_string(r.messages) + ", aligned pass " + std::to_string(r.aligned_pass) + " (" +
       percent(r.aligned_pass, r.messages) + ")\n\n";
  t += "Sources, most messages first:\n";
  t += "  " + pad("IP", 40) + pad("PTR", 32) + pad("class", 23) + pad("messages", 10) + "aligned\n";
  for (const auto& s : r.sources) {
    t += "  " + pad(s.ip, 40) + pad(s.ptr.empty() ? "-" : printable(s.ptr), 32) + pad(std::string(to_token(s.cls)), 23) +
         pad(std::to_string(s.messages), 10) + percent(s.aligned_pass, s.messages) + "\n";
  }
  t += "\nUnder p=quarantine: " + std::to_string(r.quarantine.affected) + " message(s) quarantined, " +
       std::to_string(r.quarantine.legitimate) + " of them from sources that look legitimate\n";
  t += "Under p=reject:     " + std::to_string(r.reject.affected) + " message(s) rejected, " +
       std::to_string(r.reject.legitimate) + " of them from sources that look legitimate (" +
       percent(r.reject.legitimate, r.legitimate_messages) + " of legitimate mail)\n";
  t += "\nRecommendation: " + r.recommendation + "\n";
  bool header = false;
  for (const auto& s : r.sources) {
    if (s.fix.empty()) continue;
    if (!header) t += "\nFix first:\n";
    header = true;
    t += "  - " + printable(s.fix) + "\n";
  }
  return t;
}

std::string readiness_json(const Readiness& r) {
  nlohmann::json j;
  j["domain"] = r.domain;
  j["begin"] = r.period.begin;
  j["end"] = r.period.end;
  j["days"] = r.days;
  j["policy"] = std::string(to_token(r.current));
  j["messages"] = r.messages;
  j["aligned_pass"] = r.aligned_pass;
  j["sources"] = nlohmann::json::array();
  for (const auto& s : r.sources) {
    j["sources"].push_back({{"ip", s.ip},
                            {"ptr", s.ptr},
                            {"ptr_org", s.ptr_org},
                            {"class", std::string(to_token(s.cls))},
                            {"messages", s.messages},
                            {"aligned_pass", s.aligned_pass},
                            {"fix", s.fix}});
  }
  j["projection"] = {{"quarantine", {{"affected", r.quarantine.affected}, {"legitimate", r.quarantine.legitimate}}},
                     {"reject", {{"affected", r.reject.affected}, {"legitimate", r.reject.legitimate}}}};
  j["legitimate_at_risk"] = r.legitimate_at_risk;
  j["recommendation"] = r.recommendation;
  // Untrusted text (PTR names) may hold invalid UTF-8: replaced, not thrown on.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace dmarc
