#ifndef GATEHOUSE_CCRYPT_SHIM_H
#define GATEHOUSE_CCRYPT_SHIM_H
/* libxcrypt (Debian's libcrypt-dev): crypt_rn verifies bcrypt ($2y$/$2b$/$2a$) and SHA-512
   crypt ($6$) hashes with a caller-owned buffer, so it is safe on any thread. */
#include <crypt.h>
#endif
