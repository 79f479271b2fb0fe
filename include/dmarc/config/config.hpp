// NAME
//   config - the dmarc-milter configuration file and its one settings table
// SYNOPSIS
//   # /etc/dmarc-milter.conf
//   Nameservers     127.0.0.1:5353
//   DMARCMode       rfc9989
// DESCRIPTION
//   The file has one "Key value" pair per line, as OpenDMARC's and
//   OpenDKIM's do. Keys are case-insensitive; a line whose first non-blank
//   character is '#' is a comment (a '#' inside a value is kept); blank
//   lines are ignored. A key
//   given twice keeps the last value.
//   settings_table() is the single list of keys: their type, default,
//   allowed range and one-line description. The parser, `-n` (the effective
//   configuration), conf/dmarc-milter.conf and man/dmarc-milter.conf.5 all
//   follow it (a test checks the last two).
// DIAGNOSTICS
//   ConfigError names the file and line: "FILE:LINE: message". Unknown keys
//   are warnings with file and line, so that an existing opendmarc.conf can
//   be read.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc/core/expected.hpp"
#include "dmarc/core/forwarders.hpp"
#include "dmarc/core/ip_net.hpp"
#include "dmarc/core/message_policy.hpp"
#include "dmarc/core/org_domain.hpp"

namespace dmarc {

enum class SettingType { String, Integer, Boolean, Choice, List, Path };

struct SettingSpec {
  std::string_view key;
  SettingType type;
  std::string_view default_value;  // as it would be written in the file
  std::string_view description;
  std::vector<std::string_view> choices;  // Choice only
  long min = 0, max = 0;                  // Integer only
};

const std::vector<SettingSpec>& settings_table();
const SettingSpec* find_setting(std::string_view key) noexcept;

struct ConfigError {
  std::string file;
  int line = 0;  // 0: not tied to a line
  std::string message;
  std::string str() const;
};

struct ConfigWarning {
  std::string file;
  int line = 0;
  std::string message;
  std::string str() const;
};

// The typed configuration. Every field has its settings_table() default.
struct Config {
  // DNS
  std::vector<std::string> nameservers;  // empty: /etc/resolv.conf
  int dns_timeout_s = 5;
  int dns_retries = 2;
  int dns_message_timeout_s = 30;       // all lookups of one message
  std::size_t dns_cache_size = 65536;
  std::size_t dns_cache_memory_mb = 64;
  std::uint32_t dns_cache_max_ttl = 3600;
  // DMARC
  DmarcMode mode = DmarcMode::Rfc9989;
  std::string public_suffix_list;
  // The daemon
  std::string socket;          // Socket: inet:PORT@HOST, inet6:PORT@HOST, unix:PATH (local:PATH)
  std::string user;            // UserID: user[:group], "" = do not change
  std::string pid_file;        // PidFile, "" = none
  unsigned umask = 007;        // UMask (octal)
  bool background = true;      // Background
  bool syslog = true;          // Syslog (no: log to stderr)
  std::string syslog_facility = "mail";
  std::string log_level = "info";
  int milter_debug = 0;
  std::string metrics_listen;  // MetricsListen: "" = no metrics server
  // Authentication-Results
  std::string authserv_id;     // "" = this host's name
  std::vector<std::string> own_authserv_ids;
  // Who is checked
  IpNetList ignore_hosts;
  bool ignore_authenticated_clients = true;
  ForwarderList forwarders;
  // What is done
  EnforcementSettings enforcement;
  std::string quarantine_header = "X-DMARC-Quarantine";
  FallbackAction internal_error_action = FallbackAction::TempFail;
  // DKIM
  unsigned dkim_min_key_bits = 1024;
  unsigned dkim_max_signatures = 10;
  bool dkim_allow_unsigned_trailer = false;
  // Aggregate reports (the milter records; dmarc-report(8) sends)
  std::string report_store;              // "none" or "sqlite:/path"
  std::size_t report_queue_size = 10000;
  std::string report_org_name;           // "" = this host's name
  std::string report_sender;             // "" = dmarc-reports@host
  std::string report_contact;            // "" = report_sender
  std::string report_format = "rfc7489";
  std::string report_command;
  std::string report_smtp;               // "" = use report_command
  int report_timeout_s = 120;
  int report_max_attempts = 5;
  int report_retention_days = 31;
  std::vector<std::string> ignore_mail_to;   // lower case
  std::vector<std::string> no_reports_list;  // lower case
  // Failure reports (the milter queues; dmarc-report(8) sends)
  bool failure_reports = false;
  bool failure_reports_on_none = false;
  std::string failure_reports_sent_by;       // "" = report_sender
  std::vector<std::string> failure_reports_bcc;
  std::uint64_t failure_report_rate_domain = 10;
  std::uint64_t failure_report_rate_total = 100;
  std::string failure_report_redact_key;     // "" = no redaction
  bool failure_report_whole_message = false;  // FailureReportContent message
  // Local forensic reports of our own domains
  std::vector<std::string> own_domains;      // lower case
  std::string forensic_maildir;              // "" = none
  std::vector<std::string> forensic_mail_to;
  std::uint64_t forensic_max_per_day = 10000;
  int readiness_min_days = 7;
  int readiness_max_at_risk_permille = 10;  // 10 = 1%
  bool keeps_forensics() const { return !own_domains.empty() && (!forensic_maildir.empty() || !forensic_mail_to.empty()); }

  std::string source;                   // file it came from, "" for defaults
  std::map<std::string, std::string> values;  // canonical key -> value text
  std::vector<ConfigWarning> warnings;
  // The keys the file set, each with its line (aliases under the key they
  // set): what "dmarc-milter -n" reports as kept.
  std::map<std::string, int> set_at;
};

// default_config - every setting at its default.
Config default_config();

// parse_config - read TEXT as the contents of FILE (named in messages).
Expected<Config, ConfigError> parse_config(std::string_view text, const std::string& file);
// load_config - read and parse FILE. List settings (IgnoreHosts,
// TrustedForwarders) may name files, one entry per line; errors in them
// name that file and line.
Expected<Config, ConfigError> load_config(const std::string& file);

// format_effective - the effective configuration, one "Key value" per line
// in settings_table() order, for `-n`.
std::string format_effective(const Config& c);

// split_list - values of a List setting: separated by commas and/or spaces.
std::vector<std::string> split_list(std::string_view v);

// parse_ip_port - "192.0.2.1:9100" or "[2001:db8::1]:9100": a literal IP
// address (no host names) and a port 1-65535; nullopt otherwise.
struct IpPort {
  std::string ip;  // without brackets
  std::uint16_t port = 0;
  bool v6 = false;
};
std::optional<IpPort> parse_ip_port(std::string_view text);

}  // namespace dmarc
