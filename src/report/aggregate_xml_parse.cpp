// NAME
//   aggregate_xml_parse.cpp - parse_aggregate_xml: a lenient, safe reader
//   of aggregate report documents
// STANDARDS
//   RFC 7489 Appendix C, RFC 9990 3 (the elements read), XML 1.0;
//   OWASP XXE prevention (no DTD processing at all).
// DESCRIPTION
//   The document is parsed by libxml2 into a tree (xmlCtxtReadMemory) with
//   XML_PARSE_NONET and without XML_PARSE_NOENT, XML_PARSE_DTDLOAD,
//   XML_PARSE_DTDATTR, XML_PARSE_XINCLUDE or XML_PARSE_HUGE (the default
//   depth and text limits stay). The SAX internalSubset callback stops the
//   parser at a DOCTYPE, before any markup declaration is read, so no
//   entity exists to expand or load; the document is then refused. Text is
//   taken from text and CDATA children only, never from an entity
//   reference. Parser messages are not printed (XML_PARSE_NOERROR,
//   XML_PARSE_NOWARNING); the first error is returned.
//   See dmarc/report/aggregate_xml.hpp for what is read and how leniently.
#include <libxml/parser.h>
#include <libxml/tree.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/adapters/c_handle.hpp"
#include "dmarc/core/ip_net.hpp"
#include "dmarc/report/aggregate_xml.hpp"
#include "report/aggregate_libxml.hpp"

namespace dmarc {

namespace {

using XmlParserCtxt = CHandle<xmlParserCtxt, xmlFreeParserCtxt>;
using XmlDoc = CHandle<xmlDoc, xmlFreeDoc>;

// A marker in xmlParserCtxt::_private: the document had a DOCTYPE.
char g_doctype_seen;

void refuse_doctype(void* ctx, const xmlChar*, const xmlChar*, const xmlChar*) {
  auto* ctxt = static_cast<xmlParserCtxtPtr>(ctx);
  ctxt->_private = &g_doctype_seen;
  xmlStopParser(ctxt);
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

bool is(const xmlNode* n, const char* name) {
  return n && n->type == XML_ELEMENT_NODE && n->name &&
         iequals(reinterpret_cast<const char*>(n->name), name);
}

// The element children of N, in document order.
template <class F>
void each_child(const xmlNode* n, F&& f) {
  for (const xmlNode* c = n ? n->children : nullptr; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE) f(c);
}

const xmlNode* child(const xmlNode* n, const char* name) {
  for (const xmlNode* c = n ? n->children : nullptr; c; c = c->next)
    if (is(c, name)) return c;
  return nullptr;
}

// The text of N: its text and CDATA children (never an entity reference),
// trimmed.
std::string text_of(const xmlNode* n) {
  std::string out;
  for (const xmlNode* c = n ? n->children : nullptr; c; c = c->next) {
    if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content)
      out += reinterpret_cast<const char*>(c->content);
  }
  return std::string(trim(out));
}

std::optional<std::string> child_text(const xmlNode* n, const char* name) {
  const xmlNode* c = child(n, name);
  if (!c) return std::nullopt;
  return text_of(c);
}

// A decimal integer; "1337270400.0" (NetEase, opendmarc samples) too: a
// fraction of zeros only.
std::string_view strip_zero_fraction(std::string_view s) {
  const auto dot = s.find('.');
  if (dot == std::string_view::npos || dot == 0) return s;
  for (std::size_t i = dot + 1; i < s.size(); ++i)
    if (s[i] != '0') return s;
  return s.substr(0, dot);
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  s = strip_zero_fraction(s);
  if (s.empty() || s.size() > 20) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

std::optional<std::int64_t> parse_i64(std::string_view s) {
  bool neg = !s.empty() && s.front() == '-';
  if (neg) s.remove_prefix(1);
  auto v = parse_u64(s);
  if (!v || *v > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
  return neg ? -static_cast<std::int64_t>(*v) : static_cast<std::int64_t>(*v);
}

std::optional<AuthResult> auth_result(std::string_view text) {
  const std::string t = lower(text);
  if (t == "unknown") return AuthResult::TempError;  // Appendix C: "commonly implemented as unknown"
  if (t == "error") return AuthResult::PermError;    // ... "commonly implemented as error"
  if (t == "hardfail") return AuthResult::Fail;
  return parse_auth_result(t);
}

std::optional<Alignment> alignment(std::string_view text) {
  const std::string t = lower(text);
  if (t == "pass") return Alignment::Pass;
  if (t == "fail") return Alignment::Fail;
  return parse_alignment(t);
}

std::optional<AlignmentMode> alignment_mode(std::string_view text) {
  const std::string t = lower(text);
  if (t == "relaxed") return AlignmentMode::Relaxed;
  if (t == "strict") return AlignmentMode::Strict;
  return parse_alignment_mode(t);
}

// An override: RFC 9990 / RFC 7489 names; "other" with a comment that
// starts with a name aggregate_xml() had to map (see its header) is that
// name again; an empty or unknown type is other.
PolicyOverride override_reason(std::string_view type, std::string comment) {
  PolicyOverride o;
  o.comment = std::move(comment);
  const std::string t = lower(type);
  if (auto r = parse_override_reason(t)) o.reason = *r;
  if (o.reason != OverrideReason::Other) return o;
  if (!t.empty() && t != "other") {
    o.comment = t + (o.comment.empty() ? "" : ": " + o.comment);
    return o;
  }
  for (OverrideReason r : {OverrideReason::PolicyTestMode, OverrideReason::Forwarded, OverrideReason::SampledOut}) {
    const std::string name(to_token(r));
    if (o.comment == name) {
      o.reason = r;
      o.comment.clear();
      break;
    }
    if (o.comment.size() > name.size() + 1 && o.comment.compare(0, name.size() + 2, name + ": ") == 0) {
      o.reason = r;
      o.comment.erase(0, name.size() + 2);
      break;
    }
  }
  return o;
}

class Reader {
 public:
  std::string error;

  bool metadata(const xmlNode* m, ReportMetadata& meta) {
    each_child(m, [&](const xmlNode* c) {
      if (is(c, "org_name")) meta.org_name = text_of(c);
      else if (is(c, "email")) meta.email = text_of(c);
      else if (is(c, "extra_contact_info")) meta.extra_contact_info = text_of(c);
      else if (is(c, "report_id")) meta.report_id = text_of(c);
      else if (is(c, "generator")) meta.generator = text_of(c);
      else if (is(c, "error")) meta.errors.push_back(text_of(c));
      else if (is(c, "date_range")) {
        if (auto b = child_text(c, "begin")) {
          if (auto v = parse_i64(*b)) meta.period.begin = *v;
          else fail("date_range/begin \"" + *b + "\" is not a number");
        }
        if (auto e = child_text(c, "end")) {
          if (auto v = parse_i64(*e)) meta.period.end = *v;
          else fail("date_range/end \"" + *e + "\" is not a number");
        }
      }
    });
    return error.empty();
  }

  bool policy(const xmlNode* n, PublishedPolicy& p) {
    auto pol = [&](const xmlNode* c) -> std::optional<Policy> {
      auto v = parse_policy_token(lower(text_of(c)));
      if (!v) fail("policy_published/" + name(c) + " \"" + text_of(c) + "\" is not none, quarantine or reject");
      return v;
    };
    each_child(n, [&](const xmlNode* c) {
      if (is(c, "domain")) p.domain = text_of(c);
      else if (is(c, "p")) { if (auto v = pol(c)) p.p = *v; }
      else if (is(c, "sp")) { if (auto v = pol(c)) p.sp = *v; }
      else if (is(c, "np")) { if (auto v = pol(c)) p.np = *v; }
      else if (is(c, "adkim") || is(c, "aspf")) {
        auto v = alignment_mode(text_of(c));
        if (!v) fail("policy_published/" + name(c) + " \"" + text_of(c) + "\" is not r or s");
        else (is(c, "adkim") ? p.adkim : p.aspf) = *v;
      } else if (is(c, "pct")) {
        auto v = parse_u64(text_of(c));
        if (!v || *v > 100) fail("policy_published/pct \"" + text_of(c) + "\" is not 0-100");
        else p.pct = static_cast<int>(*v);
      } else if (is(c, "fo")) p.fo = text_of(c);
      else if (is(c, "testing")) {
        const std::string t = lower(text_of(c));
        if (t == "y") p.t = true;
        else if (t == "n") p.t = false;
        else fail("policy_published/testing \"" + text_of(c) + "\" is not y or n");
      } else if (is(c, "discovery_method")) {
        auto v = parse_discovery(lower(text_of(c)));
        if (!v) fail("policy_published/discovery_method \"" + text_of(c) + "\" is not psl or treewalk");
        else p.discovery = *v;
      }
    });
    return error.empty();
  }

  bool record(const xmlNode* n, std::size_t index, AggregateRecord& r) {
    where_ = "record " + std::to_string(index) + ": ";
    const xmlNode* row = child(n, "row");
    if (!row) return fail("no row");
    auto ip = child_text(row, "source_ip");
    if (!ip || ip->empty()) return fail("no source_ip");
    auto parsed = parse_ip(*ip);
    r.source_ip = parsed ? parsed->str() : *ip;
    auto count = child_text(row, "count");
    if (!count) return fail("no count");
    auto cv = parse_u64(*count);
    if (!cv) return fail("count \"" + *count + "\" is not a number");
    r.count = *cv;

    const xmlNode* pe = child(row, "policy_evaluated");
    auto disp = child_text(pe, "disposition");
    if (!disp) return fail("no policy_evaluated/disposition");
    bool disposition_pass = false;
    if (iequals(*disp, "pass")) {
      disposition_pass = true;
      r.disposition = Disposition::None;
    } else if (auto d = parse_disposition(lower(*disp))) {
      r.disposition = *d;
    } else {
      return fail("disposition \"" + *disp + "\" is not none, quarantine, reject or pass");
    }
    for (auto [elem, out] : {std::pair{"dkim", &r.dkim_alignment}, std::pair{"spf", &r.spf_alignment}}) {
      auto t = child_text(pe, elem);
      if (!t) continue;  // stays None
      auto a = alignment(*t);
      if (!a) return fail(std::string("policy_evaluated/") + elem + " \"" + *t + "\" is not pass or fail");
      *out = *a;
    }
    r.result = (disposition_pass || r.dkim_alignment == Alignment::Pass || r.spf_alignment == Alignment::Pass)
                   ? DmarcResult::Pass
                   : DmarcResult::Fail;
    each_child(pe, [&](const xmlNode* c) {
      if (is(c, "reason"))
        r.overrides.push_back(override_reason(child_text(c, "type").value_or(""), child_text(c, "comment").value_or("")));
    });

    if (const xmlNode* ids = child(n, "identifiers")) {
      r.header_from = child_text(ids, "header_from").value_or("");
      r.envelope_from = child_text(ids, "envelope_from").value_or("");
      r.envelope_to = child_text(ids, "envelope_to").value_or("");
    }

    const xmlNode* auth = child(n, "auth_results");
    std::optional<SpfAuthResult> first_spf;
    bool ok = true;
    each_child(auth, [&](const xmlNode* c) {
      if (!ok) return;
      if (is(c, "dkim")) {
        if (r.dkim.size() == kMaxReportedDkim) return;
        DkimAuthResult d;
        d.domain = child_text(c, "domain").value_or("");
        d.selector = child_text(c, "selector").value_or("");
        if (auto t = child_text(c, "result"); t && !t->empty()) {
          auto v = auth_result(*t);
          if (!v) { ok = fail("dkim result \"" + *t + "\" is not an RFC 8601 result"); return; }
          d.result = *v;
        }
        r.dkim.push_back(std::move(d));
      } else if (is(c, "spf")) {
        SpfAuthResult s;
        s.domain = child_text(c, "domain").value_or("");
        auto scope = child_text(c, "scope");
        if (scope && !scope->empty()) {
          auto v = parse_spf_scope(lower(*scope));
          if (!v) { ok = fail("spf scope \"" + *scope + "\" is not mfrom or helo"); return; }
          s.scope = *v;
        } else if (iequals(child_text(c, "human_result").value_or(""), "scope: helo")) {
          s.scope = SpfScope::Helo;  // as aggregate_xml() writes it in RFC 9990
        }
        if (auto t = child_text(c, "result"); t && !t->empty()) {
          auto v = auth_result(*t);
          if (!v) { ok = fail("spf result \"" + *t + "\" is not an RFC 8601 result"); return; }
          s.result = *v;
        }
        if (!r.spf || (r.spf->scope != SpfScope::MailFrom && s.scope == SpfScope::MailFrom)) r.spf = std::move(s);
      }
    });
    return ok;
  }

 private:
  std::string where_;

  static std::string name(const xmlNode* c) { return reinterpret_cast<const char*>(c->name); }
  bool fail(const std::string& why) {
    if (error.empty()) error = where_ + why;
    return false;
  }
};

}  // namespace

Expected<AggregateReport, std::string> parse_aggregate_xml(std::string_view xml) {
  if (xml.empty()) return Unexpected(std::string("aggregate report: empty document"));
  if (xml.size() > kMaxAggregateXmlSize)
    return Unexpected("aggregate report: " + std::to_string(xml.size()) + " octets, over the limit of " +
                      std::to_string(kMaxAggregateXmlSize));
  report_detail::init_libxml();
  XmlParserCtxt ctxt(xmlNewParserCtxt());
  if (!ctxt || !ctxt->sax) return Unexpected(std::string("aggregate report: out of memory"));
  ctxt->sax->internalSubset = refuse_doctype;
  ctxt->_private = nullptr;
  const int options = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS |
                      XML_PARSE_COMPACT;
  XmlDoc doc(xmlCtxtReadMemory(ctxt.get(), xml.data(), static_cast<int>(xml.size()), nullptr, nullptr, options));
  if (ctxt->_private == &g_doctype_seen)
    return Unexpected(std::string("aggregate report: a document type declaration (DOCTYPE) is not accepted"));
  if (!doc || !ctxt->wellFormed) {
    std::string why = "not well-formed";
    if (const xmlError* e = xmlCtxtGetLastError(ctxt.get()); e && e->message) {
      why = trim(e->message);
      why += " (line " + std::to_string(e->line) + ")";
    }
    return Unexpected("aggregate report: " + xml_safe_text(why));
  }
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (!is(root, "feedback"))
    return Unexpected(std::string("aggregate report: the root element is not feedback"));

  AggregateReport report;
  Reader reader;
  std::size_t index = 0;
  bool have_metadata = false, have_policy = false;
  for (const xmlNode* c = root->children; c && reader.error.empty(); c = c->next) {
    if (is(c, "report_metadata")) {
      have_metadata = reader.metadata(c, report.meta);
    } else if (is(c, "policy_published")) {
      have_policy = reader.policy(c, report.policy);
    } else if (is(c, "record")) {
      AggregateRecord r;
      if (reader.record(c, ++index, r)) report.records.push_back(std::move(r));
    }
  }
  if (!reader.error.empty()) return Unexpected("aggregate report: " + xml_safe_text(reader.error));
  if (!have_metadata) return Unexpected(std::string("aggregate report: no report_metadata"));
  if (!have_policy) return Unexpected(std::string("aggregate report: no policy_published"));
  const std::int64_t day = utc_day(report.meta.period.begin);
  for (auto& r : report.records) {
    r.policy = report.policy;
    r.day = day;
  }
  return report;
}

}  // namespace dmarc
