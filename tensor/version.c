/* The version the library was built as. */
#include "tensor/internal.h"

const char *cf_version(void) { return CF_VERSION_STRING; }
