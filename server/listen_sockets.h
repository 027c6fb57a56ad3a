#ifndef ROUTEGUIDE_SERVER_LISTEN_SOCKETS_H_
#define ROUTEGUIDE_SERVER_LISTEN_SOCKETS_H_

#include <sys/socket.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace routeguide {

// A listening address split into what can be bound.
struct ListenAddress {
  bool is_unix = false;
  std::string path;  // is_unix.
  std::string host;  // Empty or "::" or "0.0.0.0": every interface.
  int port = 0;
};
// "HOST:PORT", "[V6]:PORT", "ipv4:HOST:PORT", "ipv6:[V6]:PORT" or
// "unix:PATH"; an error names the address and what is wrong with it.
absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view address);

// Sockets listening (non-blocking, close-on-exec) on every address
// `address` stands for: a host name binds each address it resolves to, all
// on one port; "[::]" is one dual-stack socket (IPv4 alone on a host
// without IPv6). With `reuse_port` each has SO_REUSEPORT; without, a port
// in use is an error that says so. A unix socket file left by a server
// that died is replaced; one a live server answers on is in use.
struct ListeningSockets {
  std::vector<int> fds;
  std::vector<std::string> names;  // Each bound address, as gRPC names peers.
  int port = 0;                    // 0 for a unix socket.
  std::string unix_path;           // The socket file created, if any.
};
absl::StatusOr<ListeningSockets> OpenListeningSockets(absl::string_view address,
                                                      bool reuse_port);

// "ipv4:1.2.3.4:5", "ipv6:[::1]:5" or "unix:PATH", as gRPC names peers.
std::string SocketAddressText(const sockaddr_storage& address, socklen_t size);

}  // namespace routeguide

#endif  // ROUTEGUIDE_SERVER_LISTEN_SOCKETS_H_
