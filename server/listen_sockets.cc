#include "listen_sockets.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace routeguide {
namespace {

std::string ErrnoText(int error) { return std::strerror(error); }

}  // namespace

std::string SocketAddressText(const sockaddr_storage& address, socklen_t size) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    inet_ntop(AF_INET, &v4.sin_addr, text, sizeof(text));
    return absl::StrCat("ipv4:", text, ":", ntohs(v4.sin_port));
  }
  if (address.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    if (IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr)) {  // A v4 client on [::].
      inet_ntop(AF_INET, &v6.sin6_addr.s6_addr[12], text, sizeof(text));
      return absl::StrCat("ipv4:", text, ":", ntohs(v6.sin6_port));
    }
    inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof(text));
    return absl::StrCat("ipv6:[", text, "]:", ntohs(v6.sin6_port));
  }
  if (address.ss_family == AF_UNIX) {
    const auto& un = reinterpret_cast<const sockaddr_un&>(address);
    const size_t length = size > offsetof(sockaddr_un, sun_path)
                              ? strnlen(un.sun_path, size - offsetof(sockaddr_un, sun_path))
                              : 0;
    return absl::StrCat("unix:", absl::string_view(un.sun_path, length));
  }
  return "unknown";
}

namespace {

int BoundPort(int fd) {
  sockaddr_storage address{};
  socklen_t size = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) return 0;
  if (address.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<sockaddr_in&>(address).sin_port);
  }
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6&>(address).sin6_port);
  }
  return 0;
}

void SetPort(sockaddr_storage& address, int port) {
  if (address.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in&>(address).sin_port = htons(static_cast<uint16_t>(port));
  } else if (address.ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6&>(address).sin6_port = htons(static_cast<uint16_t>(port));
  }
}

// Why bind or listen failed, for a person.
std::string BindError(absl::string_view address, int port, int error) {
  switch (error) {
    case EADDRINUSE:
      return absl::StrCat("cannot listen on ", address, ": port ", port,
                          " is in use (another server there? start every "
                          "server sharing it with --reuseport)");
    case EADDRNOTAVAIL:
      return absl::StrCat("cannot listen on ", address,
                          ": not an address of this host");
    case EACCES:
      return absl::StrCat("cannot listen on ", address,
                          ": permission denied (ports below 1024 need "
                          "privileges)");
    default:
      return absl::StrCat("cannot listen on ", address, ": ", ErrnoText(error));
  }
}

// A listening TCP socket on `address`; -errno on failure.
int ListenTcp(const sockaddr_storage& address, bool reuse_port, bool v6_only) {
  const int fd = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  const int one = 1;
  // SO_REUSEADDR only lets a restarted server bind past TIME_WAIT; on Linux
  // it never lets two sockets listen on one port. SO_REUSEPORT does.
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (address.ss_family == AF_INET6) {
    const int v6 = v6_only ? 1 : 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof(v6));
  }
  const socklen_t size = address.ss_family == AF_INET6 ? sizeof(sockaddr_in6)
                                                        : sizeof(sockaddr_in);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address), size) != 0 ||
      listen(fd, SOMAXCONN) != 0) {
    const int error = errno;
    close(fd);
    return -error;
  }
  return fd;
}

}  // namespace

absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view address) {
  ListenAddress parsed;
  absl::string_view rest = address;
  if (absl::ConsumePrefix(&rest, "unix:")) {
    absl::ConsumePrefix(&rest, "//");  // "unix:///abs/path" too.
    if (rest.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--address ", address, ": no socket path after unix:"));
    }
    parsed.is_unix = true;
    parsed.path = std::string(rest);
    return parsed;
  }
  if (absl::StartsWith(rest, "unix-abstract:")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--address ", address, ": abstract unix sockets are not supported"));
  }
  if (!absl::ConsumePrefix(&rest, "ipv4:")) absl::ConsumePrefix(&rest, "ipv6:");
  absl::string_view host;
  absl::string_view port_text;
  if (absl::StartsWith(rest, "[")) {
    const size_t close = rest.find(']');
    if (close == absl::string_view::npos || close + 1 >= rest.size() ||
        rest[close + 1] != ':') {
      return absl::InvalidArgumentError(
          absl::StrCat("--address ", address, ": expected [V6-ADDRESS]:PORT"));
    }
    host = rest.substr(1, close - 1);
    port_text = rest.substr(close + 2);
  } else {
    const size_t colon = rest.rfind(':');
    if (colon == absl::string_view::npos ||
        rest.substr(0, colon).find(':') != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--address ", address,
          ": expected HOST:PORT, [V6-ADDRESS]:PORT or unix:PATH"));
    }
    host = rest.substr(0, colon);
    port_text = rest.substr(colon + 1);
  }
  if (!absl::SimpleAtoi(port_text, &parsed.port) || parsed.port < 0 ||
      parsed.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--address ", address, ": the port must be a number from 0 to 65535"));
  }
  parsed.host = std::string(host);
  return parsed;
}

absl::StatusOr<ListeningSockets> OpenListeningSockets(absl::string_view listen_address,
                                                      bool reuse_port) {
  auto parsed = ParseListenAddress(listen_address);
  if (!parsed.ok()) return parsed.status();
  ListeningSockets sockets;
  if (parsed->is_unix) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (parsed->path.size() >= sizeof(address.sun_path)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--address ", listen_address, ": the socket path is longer than ",
          sizeof(address.sun_path) - 1, " bytes"));
    }
    std::memcpy(address.sun_path, parsed->path.data(), parsed->path.size());
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError(ErrnoText(errno));
    // A socket file left by a server that died is removed; one that a live
    // server answers on is a port in use.
    struct stat info {};
    if (lstat(parsed->path.c_str(), &info) == 0 && S_ISSOCK(info.st_mode)) {
      const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const bool live = probe >= 0 && connect(probe, reinterpret_cast<sockaddr*>(&address),
                                              sizeof(address)) == 0;
      if (probe >= 0) close(probe);
      if (live) {
        close(fd);
        return absl::UnavailableError(absl::StrCat(
            "cannot listen on ", listen_address,
            ": another server is listening on that socket"));
      }
      unlink(parsed->path.c_str());
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        listen(fd, SOMAXCONN) != 0) {
      const int error = errno;
      close(fd);
      return absl::UnavailableError(BindError(listen_address, 0, error));
    }
    sockets.unix_path = parsed->path;
    sockets.fds.push_back(fd);
    sockets.names.push_back(std::string(listen_address));
  } else {
    std::vector<sockaddr_storage> addresses;
    bool dual_stack = false;
    if (parsed->host.empty() || parsed->host == "::" || parsed->host == "*") {
      // Every interface: one IPv6 socket that takes IPv4 too, or IPv4
      // alone on a host without IPv6.
      sockaddr_storage any{};
      auto& v6 = reinterpret_cast<sockaddr_in6&>(any);
      v6.sin6_family = AF_INET6;
      v6.sin6_addr = in6addr_any;
      addresses.push_back(any);
      dual_stack = true;
    } else {
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      hints.ai_flags = AI_PASSIVE;
      addrinfo* found = nullptr;
      const int error = getaddrinfo(parsed->host.c_str(), nullptr, &hints, &found);
      if (error != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "cannot listen on ", listen_address, ": ", gai_strerror(error)));
      }
      for (addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
        sockaddr_storage address{};
        std::memcpy(&address, entry->ai_addr, entry->ai_addrlen);
        const bool seen = std::any_of(addresses.begin(), addresses.end(), [&](const auto& a) {
          return std::memcmp(&a, &address, sizeof(address)) == 0;
        });
        if (!seen) addresses.push_back(address);
      }
      freeaddrinfo(found);
    }
    int port = parsed->port;
    for (sockaddr_storage& address : addresses) {
      SetPort(address, port);
      int fd = ListenTcp(address, reuse_port, !dual_stack);
      if (fd == -EAFNOSUPPORT && dual_stack) {
        sockaddr_storage any{};
        auto& v4 = reinterpret_cast<sockaddr_in&>(any);
        v4.sin_family = AF_INET;
        v4.sin_addr.s_addr = htonl(INADDR_ANY);
        address = any;
        SetPort(address, port);
        fd = ListenTcp(address, reuse_port, false);
      }
      if (fd < 0) {
        // "localhost" on a host without IPv6 still serves on 127.0.0.1.
        if (!sockets.fds.empty() && (fd == -EADDRNOTAVAIL || fd == -EAFNOSUPPORT)) {
          continue;
        }
        for (int open_fd : sockets.fds) close(open_fd);
        sockets.fds.clear();
        return absl::UnavailableError(BindError(listen_address, port, -fd));
      }
      if (port == 0) port = BoundPort(fd);  // Every address gets the same one.
      sockets.fds.push_back(fd);
      sockaddr_storage bound{};
      socklen_t size = sizeof(bound);
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &size);
      sockets.names.push_back(SocketAddressText(bound, size));
    }
    sockets.port = port;
  }

  return sockets;
}

}  // namespace routeguide
