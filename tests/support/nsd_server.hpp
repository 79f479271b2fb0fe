// NAME
//   nsd_server - a private NSD on 127.0.0.1 serving the test zones, plus
//   two tiny fake DNS servers (one silent, one scripted)
// SYNOPSIS
//   dmarc::test::NsdServer& nsd = dmarc::test::NsdServer::shared();
//   dmarc::LdnsResolverOptions o;
//   o.nameservers = {nsd.address()};
//
//   dmarc::test::NsdServerOptions zo;
//   zo.extra_zones["gen.example"] = zone_text;
//   dmarc::test::NsdServer own(zo);
//   dmarc::test::BlackHoleServer hole;          // never answers
//   dmarc::test::ScriptedDnsServer fake([](const std::string& q) {
//     return dmarc::test::dns_reply(q, 2);        // SERVFAIL
//   });
// DESCRIPTION
//   NsdServer starts /usr/sbin/nsd in the foreground (-d) with a generated
//   nsd.conf in a fresh directory under /tmp. It serves every "*.zone"
//   file of the zone directory (default DMARC_TEST_DATA_DIR "/zones"),
//   the zone name being the file name without ".zone", plus the zones
//   given as text in `extra_zones` (these replace a file zone of the same
//   name). It listens on 127.0.0.1 (UDP and TCP) on a port found free by
//   binding port 0; NSD does not chroot, does not change user, uses no
//   database and no remote control. The constructor returns once NSD
//   answers the SOA query of every zone with an authoritative NOERROR.
//   NSD runs in its own process group. The destructor stops it (SIGTERM,
//   then SIGKILL to the group after 5 s or for stragglers) and removes
//   the directory, unless DMARC_TEST_KEEP_NSD=1 is set in the environment
//   (the directory is then named on stderr).
//   shared() is one NsdServer over the default zones for the whole test
//   binary, started on first use and stopped at exit.
//
//   BlackHoleServer binds a UDP socket on 127.0.0.1 and never reads it:
//   queries sent there time out.
//
//   ScriptedDnsServer answers each UDP query on 127.0.0.1 with the bytes
//   its handler returns (nothing when the handler returns ""), from its own
//   thread. dns_reply() and friends build such replies.
// DIAGNOSTICS
//   Constructors throw std::runtime_error, with NSD's log when it is NSD
//   that failed (bad zone, cannot bind, timeout).
// SECURITY
//   Test code only. NSD runs as the invoking user; with PR_SET_PDEATHSIG it
//   dies with the thread that started it (create it on the main thread).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <thread>
#include <vector>

namespace dmarc::test {

struct NsdServerOptions {
  // Directory of "<zone name>.zone" files; empty = DMARC_TEST_DATA_DIR "/zones".
  std::string zone_dir;
  // Extra zones: zone name -> zone file text (master file format).
  std::map<std::string, std::string> extra_zones;
  std::chrono::milliseconds startup_timeout{10000};
  std::string nsd_binary = "/usr/sbin/nsd";
};

class NsdServer {
 public:
  NsdServer();
  explicit NsdServer(NsdServerOptions options);
  ~NsdServer();
  NsdServer(const NsdServer&) = delete;
  NsdServer& operator=(const NsdServer&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  // address - "127.0.0.1:PORT", the form LdnsResolverOptions::nameservers takes.
  std::string address() const;
  const std::string& work_dir() const noexcept { return dir_; }
  // zones - the zone names served, sorted.
  std::vector<std::string> zones() const;
  // log - what NSD wrote to its log and stderr so far.
  std::string log() const;

  // shared - the process-wide server over the default zone directory.
  static NsdServer& shared();

 private:
  void start_once(const NsdServerOptions& options);
  void stop() noexcept;

  std::string dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::map<std::string, std::string> zone_files_;  // zone name -> absolute path
};

// BlackHoleServer - a UDP port on 127.0.0.1 that never answers.
class BlackHoleServer {
 public:
  BlackHoleServer();
  ~BlackHoleServer();
  BlackHoleServer(const BlackHoleServer&) = delete;
  BlackHoleServer& operator=(const BlackHoleServer&) = delete;
  std::uint16_t port() const noexcept { return port_; }
  std::string address() const;

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// ScriptedDnsServer - a UDP server on 127.0.0.1 answering with HANDLER's bytes.
class ScriptedDnsServer {
 public:
  using Handler = std::function<std::string(const std::string& query)>;
  explicit ScriptedDnsServer(Handler handler);
  ~ScriptedDnsServer();
  ScriptedDnsServer(const ScriptedDnsServer&) = delete;
  ScriptedDnsServer& operator=(const ScriptedDnsServer&) = delete;
  std::uint16_t port() const noexcept { return port_; }
  std::string address() const;
  std::size_t queries() const noexcept { return queries_.load(); }

 private:
  void run();

  Handler handler_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> queries_{0};
  std::thread thread_;
};

// --- raw DNS message helpers (RFC 1035 4.1) -----------------------------------

// dns_query - a query message: ID, one question NAME/QTYPE/IN, RD when asked.
std::string dns_query(std::uint16_t id, std::string_view name, std::uint16_t qtype, bool rd = false);
// dns_question_end - offset just past the question of MESSAGE (0 if malformed).
std::size_t dns_question_end(const std::string& message);
// dns_reply - a reply to QUERY: its header and question, QR set, RCODE, the
// extra header FLAGS or-ed in (e.g. 0x0200 = TC), and ANCOUNT records whose
// wire form is ANSWER_RRS appended.
std::string dns_reply(const std::string& query, int rcode, std::uint16_t flags = 0,
                      const std::string& answer_rrs = {}, std::uint16_t ancount = 0);
// exchange_udp - send QUERY to 127.0.0.1:PORT and wait up to WAIT for the
// reply with the same ID; "" on timeout or error.
std::string exchange_udp(std::uint16_t port, const std::string& query, std::chrono::milliseconds wait);
// dns_rcode / dns_id - fields of a message (-1 / 0 if too short).
int dns_rcode(const std::string& message);
std::uint16_t dns_id(const std::string& message);

}  // namespace dmarc::test
