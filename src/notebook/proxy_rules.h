// What the notebook proxy changes between the browser and Jupyter (pure):
// the request Jupyter sees carries Jupyter's token and none of the
// server's credentials; the answer the browser sees carries no trace of
// Jupyter's token. (The routes and the splice are api/notebook_routes.cc.)
#pragma once
#include <optional>
#include <string>

#include "http/message.h"

namespace trainyard::notebook {

// Hop-by-hop headers (RFC 9110 7.6.1), and those the proxy sets itself.
bool hopByHop(const std::string& name);

// The headers of a request as Jupyter at 127.0.0.1:<port> should get them:
// its token as `Authorization: token ...`; no Origin (the server's guard
// checked it; Jupyter would compare it with its own Host); without the
// server's bearer token and session cookie; X-Forwarded-For set.
http::Headers upstreamHeaders(const http::Headers& in, const std::string& jupyter_token, const std::string& client_addr);

// The request target without ?access_token= (the server's own token).
std::string withoutAccessToken(const std::string& target);

// The Cookie header without the server's session cookie (trainyard_token).
std::string withoutOwnCookie(const std::string& cookies);

// `text` with every occurrence of `secret` taken out.
std::string scrub(const std::string& text, const std::string& secret);

// The raw request head of a proxied WebSocket upgrade.
std::string websocketHead(const std::string& method, const std::string& target, int port, const http::Headers& headers);

// "2026-11-30T05:01:02.123456Z" (Jupyter's isoformat, UTC) -> Unix seconds.
std::optional<double> parseIsoUtc(const std::string& s);

}  // namespace trainyard::notebook
