// NAME
//   fault_dns - misbehaving DNS servers on 127.0.0.1 for fault injection
//   tests, and a way to kill and restart a real NSD
// SYNOPSIS
//   dmarc::test::FaultDnsServer tc([](const std::string& q, bool tcp) {
//     return tcp ? big_answer(q) : dmarc::test::dns_reply(q, 0, 0x0200);  // TC
//   }, dmarc::test::TcpMode::Refuse);
//   dmarc::test::NsdKiller k(nsd);  k.kill();  ...  k.restart();
// DESCRIPTION
//   FaultDnsServer answers UDP queries on 127.0.0.1:PORT with what its
//   handler returns for (query, false), nothing when it returns "". Over
//   TCP on the same port it behaves as TCP_MODE says:
//     Refuse  no TCP listener at all: a connect gets RST (ECONNREFUSED)
//     Answer  each query (2-octet length prefix, RFC 1035 4.2.2) gets the
//             handler's (query, true) bytes, framed; "" closes the stream
//     Hang    connections are accepted and read, never answered
//     Close   connections are accepted and closed at once
//   udp_queries() and tcp_queries() count what came in (a TCP connection
//   that sent no complete query counts as a TCP query too, for Hang/Close).
//
//   qname() is the lower-cased question name of a message.
//
//   NsdKiller stops the NSD of an NsdServer with SIGKILL (its whole process
//   group: the main process and its server children) and starts a new one
//   from the same nsd.conf, so on the same port, when asked; restart()
//   waits until it answers. The NsdServer's destructor still cleans up its
//   directory; the NsdKiller's destructor stops the NSD it started.
// SECURITY
//   Test code only.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "support/nsd_server.hpp"

namespace dmarc::test {

enum class TcpMode { Refuse, Answer, Hang, Close };

class FaultDnsServer {
 public:
  using Handler = std::function<std::string(const std::string& query, bool tcp)>;
  FaultDnsServer(Handler handler, TcpMode tcp_mode);
  ~FaultDnsServer();
  FaultDnsServer(const FaultDnsServer&) = delete;
  FaultDnsServer& operator=(const FaultDnsServer&) = delete;
  std::uint16_t port() const noexcept { return port_; }
  std::string address() const;
  std::size_t udp_queries() const noexcept { return udp_queries_.load(); }
  std::size_t tcp_queries() const noexcept { return tcp_queries_.load(); }

 private:
  void run();
  void serve_tcp(int fd);

  Handler handler_;
  TcpMode mode_;
  int udp_ = -1;
  int tcp_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> udp_queries_{0};
  std::atomic<std::size_t> tcp_queries_{0};
  std::thread thread_;
};

// qname - the question name of a DNS message, lower-cased, no trailing dot.
std::string qname(const std::string& message);

class NsdKiller {
 public:
  explicit NsdKiller(const NsdServer& nsd);
  ~NsdKiller();
  NsdKiller(const NsdKiller&) = delete;
  NsdKiller& operator=(const NsdKiller&) = delete;
  // kill - SIGKILL to the running NSD's process group; true once it no
  // longer answers.
  bool kill();
  // stop_process / cont - SIGSTOP / SIGCONT to the running NSD (a hung server).
  void stop_process();
  void cont();
  // restart - a new NSD on the same configuration; true once it answers.
  bool restart();

 private:
  pid_t running_pid() const;
  std::string dir_;
  std::uint16_t port_;
  std::string first_zone_;
  pid_t own_ = -1;  // the NSD we started, if any
};

}  // namespace dmarc::test
