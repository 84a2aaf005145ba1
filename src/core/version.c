/* version.c: the library version, from the CMake project version (GC_VERSION_STRING). */
#include "gc_core.h"

#ifndef GC_VERSION_STRING
#error "GC_VERSION_STRING comes from CMakeLists.txt (project VERSION)"
#endif

const char *gc_version(void) {
    return GC_VERSION_STRING;
}
