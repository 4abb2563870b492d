// Optional parts of trainyard built as plugins beside the binary
// (libtrainyard_torch.so, libtrainyard_pg.so), loaded only by the commands
// that need them, so every other command starts without their libraries
// (libtorch; libpq with its Kerberos/LDAP/TLS chain).
#pragma once
#include <string>

namespace trainyard::util {

// The address of `symbol` in `library`, looked up in $TRAINYARD_PLUGIN_DIR,
// beside the running binary, then in ../lib/trainyard. Throws naming `what`
// and every place tried. Loaded once, never unloaded.
void* pluginSymbol(const std::string& library, const char* symbol, const std::string& what);

}  // namespace trainyard::util
