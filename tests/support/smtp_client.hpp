// NAME
//   smtp_client - a small blocking SMTP client for the end-to-end tests
// SYNOPSIS
//   dmarc::test::SmtpMessage m;
//   m.xclient = dmarc::test::XclientAttributes{};
//   m.xclient->addr = "198.51.100.7";
//   m.xclient->name = "mail.example.org";
//   m.mail_from = "alice@example.org";            // "" = null sender <>
//   m.rcpt_to = {"bob@example.net"};
//   m.data = "From: alice@example.org\nSubject: hi\n\nbody\n";
//   dmarc::test::SmtpOutcome out = dmarc::test::send_mail(postfix.port(), m);
//   INFO(out.transcript_text());
//   CHECK(out.final_reply.str().rfind("550 5.7.1", 0) == 0);
//
//   dmarc::test::SmtpClient c("127.0.0.1", port);  // reads the greeting
//   c.ehlo("client.example");
//   c.command("NOOP");
// DESCRIPTION
//   SmtpClient speaks SMTP over one TCP connection with plain blocking
//   sockets. Every read has a deadline (the timeout given to the
//   constructor, per reply); a timeout, a closed connection or a reply
//   that does not parse throws SmtpError, whose text carries the
//   transcript so far. Every command and its reply are recorded in
//   transcript(), in order; the greeting is the first entry (with an
//   empty command).
//
//   data() sends DATA and, when the reply is 354, the message: line
//   ends normalised to CRLF (a lone LF becomes CRLF), a leading "." of
//   any line doubled (RFC 5321 4.5.2), a final CRLF added when missing,
//   then ".". It returns the reply to the final "." (or the reply to
//   DATA when that is not 354).
//
//   xclient() sends Postfix's XCLIENT command (Postfix XCLIENT_README)
//   with the attributes set, each value xtext-encoded; the server answers
//   220 and the session starts over, so an EHLO must follow.
//   auth_plain() sends AUTH PLAIN with an initial response (RFC 4616).
//
//   send_mail() runs one whole session: greeting, EHLO, optional
//   XCLIENT (then EHLO again, with the XCLIENT HELO name if one is
//   given), optional AUTH, MAIL FROM, every RCPT TO, DATA, QUIT. It stops
//   at the first reply that ends the transaction (a failed MAIL, every
//   RCPT refused, a failed DATA), sends QUIT and returns; final_reply and
//   stage say where and how it ended. It throws SmtpError only for I/O
//   failures (cannot connect, timeout, connection closed).
// SECURITY
//   Test code only: no TLS, credentials in clear text.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace dmarc::test {

class SmtpError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SmtpReply {
  int code = 0;                    // 0 = no reply (never sent, connection lost)
  std::vector<std::string> lines;  // text of each line, without "NNN-" / "NNN "

  // str - the reply as it came over the wire, lines joined by "\n" (no
  // CR): "250-mx.e2e.test\n250 CHUNKING"; "" for code 0.
  std::string str() const;
  // enhanced - the RFC 3463 status code at the start of the first line
  // ("5.7.1"), or "".
  std::string enhanced() const;
  bool positive() const noexcept { return code >= 200 && code < 400; }
};

struct SmtpExchange {
  std::string command;  // as sent, without CRLF; "" for the greeting; "<message, N bytes>" for data
  SmtpReply reply;
};

// XclientAttributes - the XCLIENT attributes to send; an empty optional is
// not sent. addr: "198.51.100.7" or "IPV6:2001:db8::7". name: the client
// host name, or "[UNAVAILABLE]" / "[TEMPUNAVAIL]". login: a SASL login
// name (Postfix then hands it to milters as {auth_authen}, {auth_type} =
// "XCLIENT").
struct XclientAttributes {
  std::optional<std::string> addr;
  std::optional<std::string> name;
  std::optional<std::string> helo;
  std::optional<std::string> login;
  std::optional<std::string> proto;  // "SMTP" or "ESMTP"
  std::optional<std::string> port;
};

// transcript_text - "C: command" / "S: reply line" lines, for INFO().
std::string transcript_text(const std::vector<SmtpExchange>& transcript);
// xtext - RFC 3461 4 xtext encoding (as XCLIENT wants its values).
std::string xtext(std::string_view value);
// base64 - RFC 4648 4 encoding.
std::string base64(std::string_view data);
// smtp_data_bytes - MESSAGE as it goes over the wire after 354: CRLF line
// ends, dot-stuffed, ending "\r\n.\r\n".
std::string smtp_data_bytes(std::string_view message);

class SmtpClient {
 public:
  // Connects to HOST:PORT (an IPv4 or IPv6 literal) and reads the greeting.
  // SOURCE, when not empty, is the local address bound before connecting
  // (an address of this host, e.g. an RFC 5737 one added to lo in a private
  // network namespace): the server sees it as the client's address.
  SmtpClient(const std::string& host, std::uint16_t port,
             std::chrono::milliseconds timeout = std::chrono::seconds(30), const std::string& source = {});
  ~SmtpClient();
  SmtpClient(const SmtpClient&) = delete;
  SmtpClient& operator=(const SmtpClient&) = delete;

  const SmtpReply& greeting() const { return transcript_.front().reply; }
  SmtpReply ehlo(std::string_view name);
  SmtpReply helo(std::string_view name);
  SmtpReply xclient(const XclientAttributes& attributes);
  SmtpReply auth_plain(std::string_view user, std::string_view password, std::string_view authzid = {});
  // mail_from - "MAIL FROM:<ADDRESS>" (ADDRESS "" = "<>") plus " PARAMS" if given.
  SmtpReply mail_from(std::string_view address, std::string_view params = {});
  SmtpReply rcpt_to(std::string_view address);
  SmtpReply data(std::string_view message);
  // message - after a 354: send MESSAGE (as smtp_data_bytes() makes it) and
  // read the reply to the final ".".
  SmtpReply message(std::string_view message);
  SmtpReply rset() { return command("RSET"); }
  SmtpReply quit();
  // command - send one command line (no CRLF) and read its reply.
  SmtpReply command(std::string_view line);
  // send_raw / read_reply - the raw pieces, for protocol oddities; what is
  // sent this way is recorded as a command "<raw, N bytes>", and the next
  // reply read is recorded against it.
  void send_raw(std::string_view bytes);
  SmtpReply read_reply();

  // ehlo_keywords - the EHLO keywords of the last EHLO reply, upper case
  // ("PIPELINING", "AUTH PLAIN LOGIN", ...).
  const std::vector<std::string>& ehlo_keywords() const { return ehlo_keywords_; }
  bool has_extension(std::string_view keyword) const;
  const std::vector<SmtpExchange>& transcript() const { return transcript_; }
  std::string transcript_text() const;
  bool connected() const noexcept { return fd_ >= 0; }

 private:
  void send_all(std::string_view bytes);
  SmtpReply receive_reply();
  SmtpReply exchange(std::string_view shown, std::string_view bytes);
  [[noreturn]] void fail(const std::string& what);

  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  std::string in_;  // bytes read but not yet consumed
  std::vector<SmtpExchange> transcript_;
  std::vector<std::string> ehlo_keywords_;
};

struct SmtpCredentials {
  std::string user;
  std::string password;
};

// SmtpMessage - one message for send_mail().
struct SmtpMessage {
  std::string host = "127.0.0.1";
  std::string source;                   // local address to connect from; "" = any
  std::string helo = "client.example";
  std::optional<XclientAttributes> xclient;
  std::optional<SmtpCredentials> auth;  // AUTH PLAIN after EHLO (and XCLIENT)
  std::string mail_from;                // "" = null reverse path <>
  std::string mail_params;              // e.g. "BODY=8BITMIME"
  std::vector<std::string> rcpt_to;
  std::string data;                     // the message; LF or CRLF line ends
};

struct SmtpOutcome {
  // The reply that decided the outcome: the one after the final "." when
  // the message got that far, else the first reply that stopped it.
  SmtpReply final_reply;
  // stage - where it ended: "greeting", "ehlo", "xclient", "auth", "mail",
  // "rcpt", "data" (the DATA command) or "message" (after the final ".").
  std::string stage;
  std::vector<SmtpReply> rcpt_replies;  // one per RCPT TO, in order
  std::vector<SmtpExchange> transcript;

  // accepted - the server took the message (2xx after the final ".").
  bool accepted() const noexcept { return stage == "message" && final_reply.code / 100 == 2; }
  // queue_id - the Postfix queue id from "250 2.0.0 Ok: queued as ID", or "".
  std::string queue_id() const;
  std::string transcript_text() const;
};

SmtpOutcome send_mail(std::uint16_t port, const SmtpMessage& message,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace dmarc::test
