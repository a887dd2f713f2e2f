// Lets user-space code (unit tests, fuzz targets) include the kernel-side L7 parsers
// (bpf/include/l7_*.h). They are pure functions written for clang -target bpf and need only the
// __u8.. types and the kernel's __always_inline; everything else about them is plain C.
#pragma once

#include <linux/types.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#include "l7.h"
