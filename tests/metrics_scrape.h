#ifndef ROUTEGUIDE_TESTS_METRICS_SCRAPE_H_
#define ROUTEGUIDE_TESTS_METRICS_SCRAPE_H_

// Reading the server's Prometheus metrics the way a scraper does.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "catch2/catch.hpp"

namespace routeguide {

#ifdef ROUTEGUIDE_TEST_METRICS_MODULE
// This build's metrics module (tests/meson.build passes its path).
inline constexpr char kTestMetricsModule[] = ROUTEGUIDE_TEST_METRICS_MODULE;
#endif

// GET http://127.0.0.1:port/metrics with a plain socket; the body.
inline std::string Scrape(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  const std::string request =
      "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  REQUIRE(write(fd, request.data(), request.size()) ==
          static_cast<ssize_t>(request.size()));
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) response.append(buffer, n);
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  REQUIRE(body != std::string::npos);
  CHECK(response.rfind("HTTP/1.", 0) == 0);
  return response.substr(body + 4);
}

}  // namespace routeguide

#endif  // ROUTEGUIDE_TESTS_METRICS_SCRAPE_H_
