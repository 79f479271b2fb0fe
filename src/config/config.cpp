// config.cpp - configuration file parser and settings table
#include "dmarc/config/config.hpp"
#include "dmarc/core/domain.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "dmarc/build_config.hpp"

namespace dmarc {

const std::vector<SettingSpec>& settings_table() {
  using T = SettingType;
  static const std::vector<SettingSpec> table = {
      // --- DNS
      {"Nameservers", T::List, "",
       "DNS servers to ask, as IP, IP:PORT or [IPv6]:PORT, separated by commas or spaces. "
       "Empty: the nameservers in /etc/resolv.conf.", {}, 0, 0},
      {"DNSTimeout", T::Integer, "5", "Seconds to wait for one DNS answer before retrying.", {}, 1, 60},
      {"DNSRetries", T::Integer, "2", "How many times a DNS query is sent before it is a temporary error.", {}, 1, 10},
      {"DNSMessageTimeout", T::Integer, "30",
       "Seconds all the DNS lookups of one message may take together (SPF, DKIM keys, DMARC, forwarders); "
       "what is left unanswered then is a temporary error.", {}, 1, 600},
      {"DNSCacheSize", T::Integer, "65536",
       "Maximum number of DNS answers kept in the cache (0 disables the cache).", {}, 0, 10000000},
      {"DNSCacheMemory", T::Integer, "64", "Maximum memory the DNS cache may use, in MiB.", {}, 1, 65536},
      {"DNSCacheMaxTTL", T::Integer, "3600", "Longest time in seconds an answer stays in the cache.", {}, 0, 604800},
      // --- DMARC
      {"DMARCMode", T::Choice, "rfc9989",
       "rfc9989: DNS tree walk for the organizational domain, np, psd and t (RFC 9989). "
       "rfc7489: Public Suffix List organizational domain and pct sampling (RFC 7489).",
       {"rfc9989", "rfc7489"}, 0, 0},
      {"PublicSuffixList", T::Path, build::kDefaultPslFile,
       "The Public Suffix List file used in rfc7489 mode (Debian package publicsuffix).", {}, 0, 0},
      // --- the daemon
      {"Socket", T::String, "inet:8895@127.0.0.1",
       "Where the milter listens: inet:PORT@HOST, inet6:PORT@HOST or unix:PATH (local:PATH).", {}, 0, 0},
      {"UserID", T::String, "", "user[:group] to run as after the socket is open. Empty: stay as started.", {}, 0, 0},
      {"PidFile", T::Path, "", "File to write the process id to. Empty: none.", {}, 0, 0},
      {"UMask", T::String, "007", "File creation mask (octal) for the unix socket and the pid file.", {}, 0, 0},
      {"Background", T::Boolean, "yes", "Detach from the terminal and run in the background (-f overrides).", {}, 0, 0},
      {"Syslog", T::Boolean, "yes", "Log to syslog; no: log to standard error.", {}, 0, 0},
      {"SyslogFacility", T::Choice, "mail", "Syslog facility.",
       {"mail", "daemon", "user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}, 0, 0},
      {"LogLevel", T::Choice, "info", "Least important messages logged: debug, info (one line per message), warning, error.",
       {"debug", "info", "warning", "error"}, 0, 0},
      {"MilterDebug", T::Integer, "0", "libmilter debug level (smfi_setdbg), 0 to 6.", {}, 0, 6},
      {"MetricsListen", T::String, "",
       "IP:PORT (or [IPv6]:PORT) of a local address where Prometheus metrics are served at /metrics. "
       "Empty: no metrics server.", {}, 0, 0},
      // --- Authentication-Results
      {"AuthservID", T::String, "",
       "authserv-id of the Authentication-Results header fields added. Empty: this host's name.", {}, 0, 0},
      {"OwnAuthservIDs", T::List, "",
       "More authserv-ids that belong to this site (other MTAs of a fleet). Incoming Authentication-Results "
       "fields carrying them or AuthservID are forged and removed.", {}, 0, 0},
      // --- who is checked
      {"IgnoreHosts", T::List, "127.0.0.1, ::1",
       "Clients (IP addresses or CIDR networks, or files listing them) whose mail is not checked.", {}, 0, 0},
      {"IgnoreAuthenticatedClients", T::Boolean, "yes", "Do not check mail from SMTP-AUTH clients.", {}, 0, 0},
      {"TrustedForwarders", T::List, "",
       "Known forwarders whose failing mail is accepted (RFC 9990 trusted_forwarder): IP or CIDR, host name "
       "(forward-confirmed reverse DNS; a leading dot matches subdomains), dkim:DOMAIN, or files listing them.",
       {}, 0, 0},
      // --- what is done
      {"RejectFailures", T::Boolean, "yes",
       "Apply the published policy (reject, quarantine). no: report only, add Authentication-Results.", {}, 0, 0},
      {"QuarantineAction", T::Choice, "header",
       "What quarantine means: header (add QuarantineHeader for Sieve/junk filing), hold (the MTA hold queue), or both.",
       {"header", "hold", "both"}, 0, 0},
      {"QuarantineHeader", T::String, "X-DMARC-Quarantine", "Name of the header field added to quarantined mail.", {}, 0, 0},
      {"RejectText", T::String, "Message rejected by the DMARC policy of {domain}",
       "Text of the 550 5.7.1 reply; {domain} is replaced by the author domain.", {}, 0, 0},
      {"DNSFailureAction", T::Choice, "accept",
       "When a DNS failure prevents the DMARC decision: accept, or tempfail (451 4.7.1).", {"accept", "tempfail"}, 0, 0},
      {"BadFromAction", T::Choice, "reject",
       "Mail with no From field, or one that cannot be read: reject (550 5.7.1), tempfail or accept.",
       {"reject", "tempfail", "accept"}, 0, 0},
      {"RejectMultiValueFrom", T::Boolean, "no",
       "Reject mail whose From names several domains. no: check each domain; the strictest policy wins.", {}, 0, 0},
      {"MaxFromDomains", T::Integer, "4", "Most From domains checked in one message; more is handled as BadFromAction.",
       {}, 1, 64},
      {"RequiredHeaders", T::Boolean, "no",
       "Reject mail whose header does not meet RFC 5322 3.6: exactly one From and Date, at most one To, Cc, "
       "Subject, Sender, Reply-To, Message-ID.", {}, 0, 0},
      {"InternalErrorAction", T::Choice, "tempfail",
       "What the MTA is told when the milter fails inside (never expected): tempfail or accept.",
       {"tempfail", "accept"}, 0, 0},
      // --- DKIM
      {"DKIMMinimumKeyBits", T::Integer, "1024", "RSA keys shorter than this never pass (RFC 8301 3.2).", {}, 1024, 16384},
      {"DKIMMaxSignatures", T::Integer, "10",
       "Most DKIM signatures verified per message, and listed in Authentication-Results and the log.", {}, 1, 64},
      {"DKIMAllowUnsignedTrailer", T::Boolean, "no",
       "Pass a signature with l= even when unsigned text follows the signed part of the body (RFC 6376 8.2). "
       "no: such a signature is dkim=policy.", {}, 0, 0},
      // --- aggregate reports (dmarc-report(8))
      {"ReportStore", T::String, build::kDefaultReportStore,
       "Where evaluations are recorded for aggregate reports: sqlite:/ABSOLUTE/PATH, or none (no recording).", {},
       0, 0},
      {"ReportQueueSize", T::Integer, "10000",
       "Records waiting for the store's writer thread at most; more are dropped, counted and logged.", {}, 100,
       10000000},
      {"ReportOrgName", T::String, "", "org_name of the reports sent. Empty: this host's name.", {}, 0, 0},
      {"ReportSender", T::String, "",
       "From address and envelope sender of report mail. Empty: dmarc-reports@ this host's name.", {}, 0, 0},
      {"ReportContact", T::String, "", "The email address in the reports' metadata. Empty: ReportSender.", {}, 0, 0},
      {"ReportFormat", T::Choice, "rfc7489",
       "rfc7489: RFC 7489 Appendix C XML (what consumers read today). rfc9990: the RFC 9990 format.",
       {"rfc7489", "rfc9990"}, 0, 0},
      {"ReportCommand", T::String, "/usr/sbin/sendmail -t -oi",
       "Program that takes a report mail on standard input (no shell; words split at blanks, quotes group).", {},
       0, 0},
      {"ReportSMTP", T::String, "", "host:port of a smarthost to send reports to by SMTP instead of ReportCommand.",
       {}, 0, 0},
      {"ReportTimeout", T::Integer, "120", "Seconds one report mail may take to hand over before it is a failure.",
       {}, 5, 3600},
      {"ReportMaxAttempts", T::Integer, "5", "Runs of dmarc-report that try a report before it is given up.", {}, 1,
       100},
      {"ReportRetentionDays", T::Integer, "31", "Days recorded rows and report states are kept.", {}, 2, 3660},
      {"IgnoreMailTo", T::List, "",
       "Addresses or domains whose incoming mail is not recorded (your own rua mailboxes: no report loops).", {}, 0,
       0},
      {"NoReportsList", T::List, "", "Addresses or domains that never get reports from us.", {}, 0, 0},
      // --- failure reports (AFRF, RFC 6591; dmarc-report failures)
      {"FailureReports", T::Boolean, "no",
       "Queue a failure report when a domain's DMARC record asks for one (ruf=, fo=); dmarc-report sends them. "
       "The reports carry the message's header fields.", {}, 0, 0},
      {"FailureReportsOnNone", T::Boolean, "no", "Also for domains whose policy is p=none.", {}, 0, 0},
      {"FailureReportsSentBy", T::String, "", "From address of failure reports. Empty: ReportSender.", {}, 0, 0},
      {"FailureReportsBcc", T::List, "", "Addresses that get a copy of every failure report sent.", {}, 0, 0},
      {"FailureReportRateDomain", T::Integer, "10", "Failure reports per reported domain and hour at most.", {}, 0,
       100000},
      {"FailureReportRateTotal", T::Integer, "100", "Failure reports per hour at most, all domains together.", {}, 0,
       1000000},
      {"FailureReportContent", T::Choice, "headers",
       "What of the message a failure report carries: headers (text/rfc822-headers) or message (the whole message "
       "as message/rfc822, its body up to 1 MiB).",
       {"headers", "message"}, 0, 0},
      {"FailureReportRedactKey", T::String, "",
       "A secret: when set, recipients' local parts in failure reports are replaced by a keyed hash (RFC 6590). "
       "Empty: no redaction.", {}, 0, 0},
      // --- local forensic reports of our own domains
      {"OwnDomains", T::List, "",
       "Your own domains (or files of them; subdomains included): every message from them that fails DMARC is kept "
       "as a local forensic report.", {}, 0, 0},
      {"ForensicMaildir", T::Path, "", "A Maildir the local forensic reports are written to. Empty: none.", {}, 0, 0},
      {"ForensicMailTo", T::List, "", "Addresses the local forensic reports are mailed to. Empty: none.", {}, 0, 0},
      {"ForensicMaxPerDay", T::Integer, "10000", "Local forensic reports per own domain and UTC day at most.", {}, 1,
       10000000},
      {"ReadinessMinDays", T::Integer, "7", "Days of data dmarc-report readiness wants before it recommends a step.",
       {}, 1, 365},
      {"ReadinessMaxAtRisk", T::Integer, "10",
       "Legitimate mail a stricter policy may hit for readiness to recommend it, in tenths of a percent (10 = 1%).",
       {}, 0, 1000},
  };
  return table;
}

// OpenDMARC keys with a meaning we do not share: read, warned about, unused.
struct KnownForeignKey {
  std::string_view key;
  std::string_view note;
};
static const KnownForeignKey kForeignKeys[] = {
    {"SPFSelfValidate", "dmarc-milter always checks SPF itself"},
    {"SPFIgnoreResults", "dmarc-milter never reads SPF results from other header fields"},
    {"HoldQuarantinedMessages", ""},  // an alias, handled below
    {"AuthservIDWithJobID", "not supported"},
    {"HistoryFile", "aggregate data is kept in ReportStore and sent by dmarc-report(8)"},
    {"IgnoreDomains", "not supported"},
    {"IgnoreMailFrom", "not supported"},
    {"AutoRestart", "use the service manager to restart"},
    {"TrustedAuthservIDs",
     "OpenDMARC reads SPF and DKIM results from Authentication-Results fields with these ids; dmarc-milter checks "
     "SPF and DKIM itself and reads none. Fields with these ids are kept as they are; to remove forged ones, "
     "list the ids in OwnAuthservIDs"},
    {"ChangeRootDirectory", "not supported; systemd's RootDirectory= or the unit's ProtectSystem=strict instead"},
    {"AutoRestartCount", "use the service manager to restart (systemd: Restart=on-failure)"},
    {"AutoRestartRate", "use the service manager to restart (systemd: StartLimitBurst=, StartLimitIntervalSec=)"},
    {"BaseDirectory", "not needed: dmarc-milter works in / and every path it uses is absolute"},
    {"CopyFailuresTo", "not supported; FailureReportsBcc copies failure reports, OwnDomains keeps failing mail of "
                       "your own domains as local forensic reports"},
    {"DomainWhitelist", "not supported: mail from a listed From domain is still checked; list known forwarders in "
                        "TrustedForwarders"},
    {"DomainWhitelistFile", "not supported: mail from a listed From domain is still checked; list known forwarders "
                            "in TrustedForwarders"},
    {"DomainWhitelistSize", "not supported (see DomainWhitelist)"},
    {"EnableCoreDumps", "core dumps are the service manager's (systemd: LimitCORE=)"},
    {"RecordAllMessages", "every checked message is recorded when ReportStore is set"},
    {"SoftwareHeader", "not supported: no DMARC-Filter field is added"},
    {"RejectString", ""},  // an alias, handled below
};

std::optional<IpPort> parse_ip_port(std::string_view text) {
  IpPort out;
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    out.v6 = true;
  } else {
    std::size_t colon = text.find(':');
    if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned long p = 0;
  auto [e, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc{} || e != port.data() + port.size() || p == 0 || p > 65535) return std::nullopt;
  out.ip = std::string(host);
  unsigned char buf[16];
  if (inet_pton(out.v6 ? AF_INET6 : AF_INET, out.ip.c_str(), buf) != 1) return std::nullopt;
  out.port = static_cast<std::uint16_t>(p);
  return out;
}

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}
std::string loc(const std::string& file, int line) {
  std::string s = file.empty() ? std::string("(config)") : file;
  if (line > 0) s += ":" + std::to_string(line);
  return s;
}

// Validate VALUE for SPEC; store its canonical text. Returns an error or "".
std::string apply(Config& c, const SettingSpec& spec, std::string_view value) {
  std::string v(value);
  const std::string key(spec.key);
  switch (spec.type) {
    case SettingType::Integer: {
      long n = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (v.empty() || ec != std::errc{} || p != v.data() + v.size()) return key + " needs a whole number, not '" + v + "'";
      if (n < spec.min || n > spec.max)
        return key + " must be between " + std::to_string(spec.min) + " and " + std::to_string(spec.max) + ", not " + v;
      v = std::to_string(n);
      break;
    }
    case SettingType::Boolean: {
      if (ascii_iequals(v, "yes") || ascii_iequals(v, "true") || ascii_iequals(v, "on") || v == "1") v = "yes";
      else if (ascii_iequals(v, "no") || ascii_iequals(v, "false") || ascii_iequals(v, "off") || v == "0") v = "no";
      else return key + " needs yes or no, not '" + v + "'";
      break;
    }
    case SettingType::Choice: {
      auto it = std::find_if(spec.choices.begin(), spec.choices.end(), [&](std::string_view ch) { return ascii_iequals(ch, v); });
      if (it == spec.choices.end()) {
        std::string all;
        for (auto ch : spec.choices) all += (all.empty() ? "" : ", ") + std::string(ch);
        return key + " must be one of " + all + ", not '" + v + "'";
      }
      v = std::string(*it);
      break;
    }
    case SettingType::List: {
      std::string joined;
      for (const auto& i : split_list(v)) joined += (joined.empty() ? "" : ", ") + i;
      v = joined;
      break;
    }
    case SettingType::Path:
      if (!v.empty() && v[0] != '/') return key + " needs an absolute path, not '" + v + "'";
      break;
    case SettingType::String:
      for (unsigned char ch : v) {
        if (ch < 0x20 || ch == 0x7f) return key + " contains a control character";
      }
      break;
  }
  c.values[key] = v;
  return {};
}

const std::string& value_of(const Config& c, std::string_view key) {
  static const std::string empty;
  auto it = c.values.find(std::string(key));
  return it == c.values.end() ? empty : it->second;
}
long int_of(const Config& c, std::string_view key) { return std::stol(value_of(c, key)); }
bool bool_of(const Config& c, std::string_view key) { return value_of(c, key) == "yes"; }

// The entries of a List setting, with files expanded: an entry starting
// with '/' names a file with one entry per line ('#' comments). Each entry
// comes with the file and line to blame.
struct Entry {
  std::string text, file;
  int line = 0;
};
Expected<std::vector<Entry>, ConfigError> list_entries(const Config& c, std::string_view key, const std::string& file,
                                                       int line) {
  std::vector<Entry> out;
  for (const auto& item : split_list(value_of(c, key))) {
    if (item.empty() || item[0] != '/') {
      out.push_back({item, file, line});
      continue;
    }
    // A regular file of a sane size: /dev/zero or a FIFO would never end.
    std::error_code fe;
    const auto st = std::filesystem::status(item, fe);
    if (!fe && std::filesystem::exists(st) && !std::filesystem::is_regular_file(st))
      return Unexpected(ConfigError{file, line, std::string(key) + ": " + item + " is not a regular file"});
    if (!fe && std::filesystem::is_regular_file(st) && std::filesystem::file_size(item, fe) > (64u << 20))
      return Unexpected(ConfigError{file, line, std::string(key) + ": " + item + " is larger than 64 MiB"});
    std::ifstream in(item);
    if (!in) return Unexpected(ConfigError{file, line, std::string(key) + ": cannot read " + item + ": " + std::strerror(errno)});
    std::string l;
    int n = 0;
    while (std::getline(in, l)) {
      ++n;
      std::size_t hash = l.find('#');
      if (hash != std::string::npos) l.resize(hash);
      for (const auto& e : split_list(trim(l))) out.push_back({e, item, n});
      if (out.size() > 100000) return Unexpected(ConfigError{item, n, "more than 100000 entries"});
    }
  }
  return out;
}

// bind_settings - the typed fields from the canonical values; checks that need
// more than the type (socket syntax, octal, addresses).
std::optional<ConfigError> bind_settings(Config& c, const std::map<std::string, int>& lines, const std::string& file) {
  auto line_of = [&](std::string_view key) {
    auto it = lines.find(std::string(key));
    return it == lines.end() ? 0 : it->second;
  };
  auto err = [&](std::string_view key, std::string msg) { return ConfigError{file, line_of(key), std::move(msg)}; };

  c.nameservers = split_list(value_of(c, "Nameservers"));
  c.dns_timeout_s = static_cast<int>(int_of(c, "DNSTimeout"));
  c.dns_retries = static_cast<int>(int_of(c, "DNSRetries"));
  c.dns_message_timeout_s = static_cast<int>(int_of(c, "DNSMessageTimeout"));
  c.dns_cache_size = static_cast<std::size_t>(int_of(c, "DNSCacheSize"));
  c.dns_cache_memory_mb = static_cast<std::size_t>(int_of(c, "DNSCacheMemory"));
  c.dns_cache_max_ttl = static_cast<std::uint32_t>(int_of(c, "DNSCacheMaxTTL"));
  c.mode = value_of(c, "DMARCMode") == "rfc7489" ? DmarcMode::Rfc7489 : DmarcMode::Rfc9989;
  c.public_suffix_list = value_of(c, "PublicSuffixList");

  c.socket = value_of(c, "Socket");
  {
    std::string_view s = c.socket;
    bool ok = false;
    if (s.rfind("unix:", 0) == 0 || s.rfind("local:", 0) == 0) {
      std::string_view path = s.substr(s.find(':') + 1);
      ok = !path.empty() && path[0] == '/';
    } else if (s.rfind("inet:", 0) == 0 || s.rfind("inet6:", 0) == 0) {
      std::string_view rest = s.substr(s.find(':') + 1);
      std::string_view port = rest.substr(0, rest.find('@'));
      long p = 0;
      auto [e, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
      ok = ec == std::errc{} && e == port.data() + port.size() && p > 0 && p < 65536;
    }
    if (!ok) return err("Socket", "Socket must be inet:PORT@HOST, inet6:PORT@HOST or unix:/PATH, not '" + c.socket + "'");
  }
  c.user = value_of(c, "UserID");
  c.pid_file = value_of(c, "PidFile");
  {
    const std::string& m = value_of(c, "UMask");
    unsigned v = 0;
    auto [e, ec] = std::from_chars(m.data(), m.data() + m.size(), v, 8);
    if (m.empty() || ec != std::errc{} || e != m.data() + m.size() || v > 0777)
      return err("UMask", "UMask must be an octal number such as 007, not '" + m + "'");
    c.umask = v;
  }
  c.background = bool_of(c, "Background");
  c.syslog = bool_of(c, "Syslog");
  c.syslog_facility = value_of(c, "SyslogFacility");
  c.log_level = value_of(c, "LogLevel");
  c.milter_debug = static_cast<int>(int_of(c, "MilterDebug"));
  c.metrics_listen = value_of(c, "MetricsListen");
  if (!c.metrics_listen.empty()) {
    auto ep = parse_ip_port(c.metrics_listen);
    if (!ep) return err("MetricsListen", "MetricsListen must be IP:PORT or [IPv6]:PORT, not '" + c.metrics_listen + "'");
  }

  c.authserv_id = value_of(c, "AuthservID");
  for (unsigned char ch : c.authserv_id) {
    if (ch <= 0x20 || ch >= 0x7f || ch == ';' || ch == '(' || ch == '"')
      return err("AuthservID", "AuthservID must be a single token such as mx.example.com");
  }
  c.own_authserv_ids = split_list(value_of(c, "OwnAuthservIDs"));

  c.ignore_hosts = IpNetList{};
  auto ignore = list_entries(c, "IgnoreHosts", file, line_of("IgnoreHosts"));
  if (!ignore) return ignore.error();
  for (const auto& e : *ignore) {
    auto net = parse_ip_net(e.text);
    if (!net) return ConfigError{e.file, e.line, "IgnoreHosts: not an IP address or network: '" + e.text + "'"};
    if (net->has_host_bits())
      c.warnings.push_back({e.file, e.line, "IgnoreHosts: " + e.text + " has host bits set; using " + net->str()});
    c.ignore_hosts.add(*net);
  }
  c.ignore_authenticated_clients = bool_of(c, "IgnoreAuthenticatedClients");
  c.forwarders = ForwarderList{};
  auto fwd = list_entries(c, "TrustedForwarders", file, line_of("TrustedForwarders"));
  if (!fwd) return fwd.error();
  for (const auto& e : *fwd) {
    if (auto bad = c.forwarders.add(e.text)) return ConfigError{e.file, e.line, "TrustedForwarders: " + *bad};
  }

  EnforcementSettings& en = c.enforcement;
  en.reject_failures = bool_of(c, "RejectFailures");
  const std::string& qa = value_of(c, "QuarantineAction");
  en.quarantine = qa == "hold" ? QuarantineAction::Hold : qa == "both" ? QuarantineAction::Both : QuarantineAction::Header;
  c.quarantine_header = value_of(c, "QuarantineHeader");
  if (c.quarantine_header.empty() ||
      !std::all_of(c.quarantine_header.begin(), c.quarantine_header.end(),
                   [](unsigned char ch) { return ch > 0x20 && ch < 0x7f && ch != ':'; }))
    return err("QuarantineHeader", "QuarantineHeader must be a header field name such as X-DMARC-Quarantine");
  en.reject_text = value_of(c, "RejectText");
  en.dns_failure = value_of(c, "DNSFailureAction") == "tempfail" ? FallbackAction::TempFail : FallbackAction::Accept;
  const std::string& bf = value_of(c, "BadFromAction");
  en.bad_from = bf == "accept" ? FallbackAction::Accept : bf == "tempfail" ? FallbackAction::TempFail : FallbackAction::Reject;
  en.reject_multi_value_from = bool_of(c, "RejectMultiValueFrom");
  en.max_from_domains = static_cast<std::size_t>(int_of(c, "MaxFromDomains"));
  en.required_headers = bool_of(c, "RequiredHeaders");
  c.internal_error_action = value_of(c, "InternalErrorAction") == "accept" ? FallbackAction::Accept : FallbackAction::TempFail;
  c.dkim_min_key_bits = static_cast<unsigned>(int_of(c, "DKIMMinimumKeyBits"));
  c.dkim_max_signatures = static_cast<unsigned>(int_of(c, "DKIMMaxSignatures"));
  c.dkim_allow_unsigned_trailer = bool_of(c, "DKIMAllowUnsignedTrailer");

  c.report_store = value_of(c, "ReportStore");
  if (c.report_store != "none" && (c.report_store.rfind("sqlite:/", 0) != 0 || c.report_store.size() < 9))
    return err("ReportStore", "ReportStore must be none or sqlite:/ABSOLUTE/PATH, not '" + c.report_store + "'");
  c.report_queue_size = static_cast<std::size_t>(int_of(c, "ReportQueueSize"));
  c.report_org_name = value_of(c, "ReportOrgName");
  c.report_sender = value_of(c, "ReportSender");
  c.report_contact = value_of(c, "ReportContact");
  for (const char* key : {"ReportSender", "ReportContact"}) {
    const std::string& a = value_of(c, key);
    bool ok = a.empty() || (a.find('@') != std::string::npos && a.front() != '@' && a.back() != '@' &&
                            std::all_of(a.begin(), a.end(), [](unsigned char ch) {
                              return ch > 0x20 && ch < 0x7f && ch != '<' && ch != '>' && ch != ',' && ch != '"';
                            }));
    if (!ok) return err(key, std::string(key) + " must be a plain address such as dmarc@example.net, not '" + a + "'");
  }
  c.report_format = value_of(c, "ReportFormat");
  c.report_command = value_of(c, "ReportCommand");
  c.report_smtp = value_of(c, "ReportSMTP");
  if (!c.report_smtp.empty()) {
    std::size_t colon = c.report_smtp.rfind(':');
    long port = 0;
    bool ok = colon != std::string::npos && colon > 0;
    if (ok) {
      std::string_view ps = std::string_view(c.report_smtp).substr(colon + 1);
      auto [e, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
      ok = ec == std::errc{} && e == ps.data() + ps.size() && port > 0 && port < 65536;
    }
    if (!ok) return err("ReportSMTP", "ReportSMTP must be HOST:PORT or [IPv6]:PORT, not '" + c.report_smtp + "'");
  }
  c.report_timeout_s = static_cast<int>(int_of(c, "ReportTimeout"));
  c.report_max_attempts = static_cast<int>(int_of(c, "ReportMaxAttempts"));
  c.report_retention_days = static_cast<int>(int_of(c, "ReportRetentionDays"));
  for (const char* key : {"IgnoreMailTo", "NoReportsList"}) {
    auto entries = list_entries(c, key, file, line_of(key));
    if (!entries) return entries.error();
    std::vector<std::string>& dst = std::string_view(key) == "IgnoreMailTo" ? c.ignore_mail_to : c.no_reports_list;
    dst.clear();
    for (const auto& e : *entries) dst.push_back(ascii_lowercase(e.text));
  }
  c.failure_reports = bool_of(c, "FailureReports");
  c.failure_reports_on_none = bool_of(c, "FailureReportsOnNone");
  c.failure_reports_sent_by = value_of(c, "FailureReportsSentBy");
  {
    const std::string& a = c.failure_reports_sent_by;
    bool ok = a.empty() || (a.find('@') != std::string::npos && a.front() != '@' && a.back() != '@' &&
                            std::all_of(a.begin(), a.end(), [](unsigned char ch) {
                              return ch > 0x20 && ch < 0x7f && ch != '<' && ch != '>' && ch != ',' && ch != '"';
                            }));
    if (!ok)
      return err("FailureReportsSentBy",
                 "FailureReportsSentBy must be a plain address such as dmarc@example.net, not '" + a + "'");
  }
  c.failure_reports_bcc.clear();
  for (const auto& a : split_list(value_of(c, "FailureReportsBcc"))) {
    if (a.find('@') == std::string::npos)
      return err("FailureReportsBcc", "FailureReportsBcc: not an address: '" + a + "'");
    c.failure_reports_bcc.push_back(a);
  }
  c.failure_report_rate_domain = static_cast<std::uint64_t>(int_of(c, "FailureReportRateDomain"));
  c.failure_report_rate_total = static_cast<std::uint64_t>(int_of(c, "FailureReportRateTotal"));
  {
    auto own = list_entries(c, "OwnDomains", file, line_of("OwnDomains"));
    if (!own) return own.error();
    c.own_domains.clear();
    for (const auto& e : *own) {
      std::string d = ascii_lowercase(e.text);
      while (!d.empty() && d.back() == '.') d.pop_back();
      if (d.empty() || d.find('@') != std::string::npos || d.find('.') == std::string::npos)
        return ConfigError{e.file, e.line, "OwnDomains: not a domain: '" + e.text + "'"};
      c.own_domains.push_back(d);
    }
  }
  c.failure_report_redact_key = value_of(c, "FailureReportRedactKey");
  c.failure_report_whole_message = value_of(c, "FailureReportContent") == "message";
  c.forensic_maildir = value_of(c, "ForensicMaildir");
  c.forensic_mail_to.clear();
  for (const auto& a : split_list(value_of(c, "ForensicMailTo"))) {
    if (a.find('@') == std::string::npos) return err("ForensicMailTo", "ForensicMailTo: not an address: '" + a + "'");
    c.forensic_mail_to.push_back(a);
  }
  c.forensic_max_per_day = static_cast<std::uint64_t>(int_of(c, "ForensicMaxPerDay"));
  c.readiness_min_days = static_cast<int>(int_of(c, "ReadinessMinDays"));
  c.readiness_max_at_risk_permille = static_cast<int>(int_of(c, "ReadinessMaxAtRisk"));
  return std::nullopt;
}
}  // namespace

std::string ConfigError::str() const { return loc(file, line) + ": " + message; }
std::string ConfigWarning::str() const { return loc(file, line) + ": " + message; }

const SettingSpec* find_setting(std::string_view key) noexcept {
  for (const auto& s : settings_table()) {
    if (ascii_iequals(s.key, key)) return &s;
  }
  return nullptr;
}

std::vector<std::string> split_list(std::string_view v) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : v) {
    if (ch == ',' || ch == ' ' || ch == '\t') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

namespace {
Config defaults_only() {
  Config c;
  for (const auto& s : settings_table()) {
    std::string e = apply(c, s, s.default_value);
    (void)e;  // defaults are valid by construction (checked by a test)
  }
  return c;
}
}  // namespace

Config default_config() {
  Config c = defaults_only();
  auto e = bind_settings(c, {}, "");
  (void)e;  // checked by a test
  return c;
}

Expected<Config, ConfigError> parse_config(std::string_view text, const std::string& file) {
  Config c = defaults_only();
  c.source = file;
  std::map<std::string, int> lines;
  int lineno = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++lineno;
    if (line.find('\0') != std::string_view::npos)
      return Unexpected(ConfigError{file, lineno, "NUL byte in configuration line"});
    // A line whose first non-blank character is '#' is a comment; a '#'
    // elsewhere is part of the value ("RejectText Ticket #1").
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    std::size_t sp = line.find_first_of(" \t");
    std::string_view key = line.substr(0, sp);
    std::string_view value = sp == std::string_view::npos ? std::string_view{} : trim(line.substr(sp));
    const SettingSpec* spec = find_setting(key);
    if (!spec) {
      // OpenDMARC's HoldQuarantinedMessages: an alias of QuarantineAction.
      if (ascii_iequals(key, "HoldQuarantinedMessages")) {
        std::string b(value);
        const SettingSpec* qa = find_setting("QuarantineAction");
        bool yes = ascii_iequals(b, "yes") || ascii_iequals(b, "true") || ascii_iequals(b, "on") || b == "1";
        bool no = ascii_iequals(b, "no") || ascii_iequals(b, "false") || ascii_iequals(b, "off") || b == "0";
        if (!yes && !no) return Unexpected(ConfigError{file, lineno, "HoldQuarantinedMessages needs yes or no, not '" + b + "'"});
        apply(c, *qa, yes ? "both" : "header");
        lines["QuarantineAction"] = lineno;
        c.warnings.push_back({file, lineno, std::string("HoldQuarantinedMessages (OpenDMARC) read as QuarantineAction ") +
                                                (yes ? "both" : "header")});
        continue;
      }
      // OpenDMARC's RejectString: RejectText, its %s the domain.
      if (ascii_iequals(key, "RejectString")) {
        std::string t(value);
        for (std::size_t at; (at = t.find("%s")) != std::string::npos;) t.replace(at, 2, "{domain}");
        std::string err = apply(c, *find_setting("RejectText"), t);
        if (!err.empty()) return Unexpected(ConfigError{file, lineno, err});
        lines["RejectText"] = lineno;
        c.warnings.push_back({file, lineno, "RejectString (OpenDMARC) read as RejectText " + t});
        continue;
      }
      std::string note = "unknown key '" + std::string(key) + "' ignored";
      for (const auto& f : kForeignKeys) {
        if (ascii_iequals(f.key, key)) note = "OpenDMARC key '" + std::string(f.key) + "' ignored: " + std::string(f.note);
      }
      c.warnings.push_back({file, lineno, note});
      continue;
    }
    if (value.empty() && spec->type != SettingType::List && spec->type != SettingType::String &&
        spec->type != SettingType::Path)
      return Unexpected(ConfigError{file, lineno, std::string(spec->key) + " needs a value"});
    std::string err = apply(c, *spec, value);
    if (!err.empty()) return Unexpected(ConfigError{file, lineno, err});
    lines[std::string(spec->key)] = lineno;
  }
  if (auto e = bind_settings(c, lines, file)) return Unexpected(*e);
  c.set_at = std::move(lines);
  return c;
}

Expected<Config, ConfigError> load_config(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Unexpected(ConfigError{file, 0, std::string("cannot read: ") + std::strerror(errno)});
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > 1024 * 1024) return Unexpected(ConfigError{file, 0, "larger than 1 MiB"});
  return parse_config(text, file);
}

std::string format_effective(const Config& c) {
  std::string out;
  if (!c.source.empty()) out += "# effective configuration from " + c.source + "\n";
  for (const auto& s : settings_table()) {
    auto it = c.values.find(std::string(s.key));
    std::string v = it == c.values.end() ? std::string(s.default_value) : it->second;
    out += std::string(s.key) + (v.empty() ? "" : " " + v) + "\n";
  }
  return out;
}

}  // namespace dmarc
