// readiness_out.cpp - the readiness report, text and JSON (dmarc/report/readiness_out.hpp)
#include "dmarc/report/readiness_out.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "report/aggregate_libxml.hpp"

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
                            {"spf_domains", s.spf_domains},
                            {"dkim_domains", s.dkim_domains},
                            {"fix", s.fix}});
  }
  j["projection"] = {{"quarantine", {{"affected", r.quarantine.affected}, {"legitimate", r.quarantine.legitimate}}},
                     {"reject", {{"affected", r.reject.affected}, {"legitimate", r.reject.legitimate}}}};
  j["legitimate_at_risk"] = r.legitimate_at_risk;
  j["recommendation"] = r.recommendation;
  // Untrusted text (PTR names) may hold invalid UTF-8: replaced, not thrown on.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string readiness_html(const Readiness& r) {
  using report_detail::Writer;
  report_detail::init_libxml();
  report_detail::XmlBuffer buf(xmlBufferCreate());
  report_detail::XmlWriter xw(xmlNewTextWriterMemory(buf.get(), 0));
  if (!buf || !xw) return {};
  xmlTextWriterSetIndent(xw.get(), 1);
  Writer w(xw.get());
  w.check(xmlTextWriterWriteDTD(xw.get(), report_detail::xc("html"), nullptr, nullptr, nullptr));
  const std::string span = format_day(r.period.first_day()) + " to " + format_day(r.period.last_day());
  w.start("html");
  w.attribute("xmlns", "http://www.w3.org/1999/xhtml");
  w.attribute("lang", "en");
  w.start("head");
  w.start("meta");
  w.attribute("charset", "utf-8");
  w.end();
  w.element("title", "DMARC readiness of " + r.domain);
  w.element("style",
            "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}td.n{text-align:right}"
            ".aligned{color:#176f2c}.unauthenticated{color:#a31515}.forwarder{color:#8a5a00}"
            ".authorised_misaligned{color:#1f4e9c}");
  w.end();  // head
  w.start("body");
  w.element("h1", "DMARC readiness of " + r.domain);
  w.element("p", span + ", " + std::to_string(r.days) + " day(s) with data; policy now p=" +
                     std::string(to_token(r.current)) + "; " + std::to_string(r.messages) + " messages, " +
                     percent(r.aligned_pass, r.messages) + " aligned pass.");
  w.element("p", "Under p=quarantine " + std::to_string(r.quarantine.affected) + " message(s) would be quarantined, " +
                     std::to_string(r.quarantine.legitimate) + " from sources that look legitimate; under p=reject " +
                     std::to_string(r.reject.affected) + " rejected, " + std::to_string(r.reject.legitimate) + " (" +
                     percent(r.reject.legitimate, r.legitimate_messages) + " of legitimate mail).");
  w.start("p");
  w.start("strong");
  w.text("Recommendation: " + r.recommendation);
  w.end();
  w.end();

  // The daily aligned-pass rate, 0-100%, as an inline SVG polyline.
  w.element("h2", "Aligned pass per day");
  const int width = 720, height = 240, left = 48, right = 16, top = 16, bottom = 40;
  w.start("svg");
  w.attribute("xmlns", "http://www.w3.org/2000/svg");
  w.attribute("width", std::to_string(width));
  w.attribute("height", std::to_string(height));
  w.attribute("viewBox", "0 0 " + std::to_string(width) + " " + std::to_string(height));
  w.attribute("role", "img");
  w.element("title", "Daily aligned-pass rate of " + r.domain);
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  for (int pct : {0, 50, 100}) {
    double y = top + plot_h * (1 - pct / 100.0);
    w.start("line");
    w.attribute("x1", std::to_string(left));
    w.attribute("x2", std::to_string(width - right));
    w.attribute("y1", std::to_string(y));
    w.attribute("y2", std::to_string(y));
    w.attribute("stroke", "#ddd");
    w.end();
    w.start("text");
    w.attribute("x", "4");
    w.attribute("y", std::to_string(y + 4));
    w.attribute("font-size", "12");
    w.text(std::to_string(pct) + "%");
    w.end();
  }
  std::string points;
  const std::size_t n = r.daily.size();
  for (std::size_t i = 0; i < n; ++i) {
    const auto& d = r.daily[i];
    double x = left + (n == 1 ? plot_w / 2 : plot_w * static_cast<double>(i) / static_cast<double>(n - 1));
    double rate = d.messages ? static_cast<double>(d.aligned_pass) / static_cast<double>(d.messages) : 0;
    double y = top + plot_h * (1 - rate);
    char xy[64];
    std::snprintf(xy, sizeof xy, "%.1f,%.1f", x, y);
    points += (points.empty() ? "" : " ") + std::string(xy);
    w.start("circle");
    w.attribute("cx", std::to_string(x));
    w.attribute("cy", std::to_string(y));
    w.attribute("r", "3");
    w.attribute("fill", "#1f4e9c");
    w.element("title", format_day(d.day) + ": " + percent(d.aligned_pass, d.messages) + " of " +
                           std::to_string(d.messages));
    w.end();
    if (i == 0 || i + 1 == n) {
      w.start("text");
      w.attribute("x", std::to_string(x - 30));
      w.attribute("y", std::to_string(height - 12));
      w.attribute("font-size", "12");
      w.text(format_day(d.day));
      w.end();
    }
  }
  w.start("polyline");
  w.attribute("points", points);
  w.attribute("fill", "none");
  w.attribute("stroke", "#1f4e9c");
  w.attribute("stroke-width", "2");
  w.end();
  w.end();  // svg

  w.element("h2", "Sources");
  w.start("table");
  w.start("tr");
  for (const char* h : {"IP", "PTR", "class", "messages", "aligned pass"}) w.element("th", h);
  w.end();
  for (const auto& s : r.sources) {
    w.start("tr");
    w.element("td", s.ip);
    w.element("td", s.ptr.empty() ? "-" : s.ptr);
    w.start("td");
    w.attribute("class", std::string(to_token(s.cls)));
    w.text(std::string(to_token(s.cls)));
    w.end();
    w.start("td");
    w.attribute("class", "n");
    w.text(std::to_string(s.messages));
    w.end();
    w.start("td");
    w.attribute("class", "n");
    w.text(percent(s.aligned_pass, s.messages));
    w.end();
    w.end();
  }
  w.end();  // table
  bool any_fix = false;
  for (const auto& s : r.sources) any_fix = any_fix || !s.fix.empty();
  if (any_fix) {
    w.element("h2", "Fix first");
    w.start("ul");
    for (const auto& s : r.sources) {
      if (!s.fix.empty()) w.element("li", s.fix);
    }
    w.end();
  }
  w.end();  // body
  w.end();  // html
  w.check(xmlTextWriterEndDocument(xw.get()));
  xw.reset();  // flushes into buf
  if (!w.ok()) return {};
  return std::string(reinterpret_cast<const char*>(xmlBufferContent(buf.get())),
                     static_cast<std::size_t>(xmlBufferLength(buf.get())));
}

}  // namespace dmarc
