/* Private to io/: helpers shared by the readers and writers. */
#ifndef WRN_IO_INTERNAL_H
#define WRN_IO_INTERNAL_H

#include <stddef.h>

/* Length of the well-formed UTF-8 sequence starting at s (at most avail bytes), or 0 when
 * it is not one (overlong forms, surrogates and code points past U+10FFFF included). */
size_t wrn_io_utf8_seq(const unsigned char *s, size_t avail);

#endif
