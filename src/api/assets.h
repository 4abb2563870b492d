// The dashboard's built files (ui/ -> npm run build -> ui/dist), embedded
// into the binary at build time so the server needs nothing beside itself.
#pragma once
#include <cstddef>
#include <string_view>

namespace trainyard::api {

struct Asset {
  const char* path;          // "index.html", "assets/app.js"
  const char* content_type;
  const unsigned char* data;
  size_t size;
};

// Null when no such file was built in.
const Asset* findAsset(std::string_view path);

}  // namespace trainyard::api
