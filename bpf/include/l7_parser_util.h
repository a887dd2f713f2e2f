/* Helpers shared by the L7 protocol parsers (l7_redis.h, l7_postgres.h): pure, usable in BPF and
 * in user space like the parsers themselves. */
#ifndef EA_BPF_L7_PARSER_UTIL_H
#define EA_BPF_L7_PARSER_UTIL_H

#include "l7.h"

/* Positions a parser handles are at most len <= L7_PEEK, so masking them with this changes no
 * value. */
#define L7_POS_MASK (2 * L7_PEEK - 1)

/* Returns x & mask (x itself when x <= mask) without what the verifier knew about x: the value
 * goes through a 4-byte stack slot that is not 8-byte aligned, which the verifier does not track,
 * so it reads back as any 32-bit number. Parsers use it where paths join (a loop's next
 * iteration, a function's entry and exit): the bounds that comparisons taught the verifier about
 * a position differ from path to path and would keep it from pruning paths that are otherwise
 * alike, so that each one would be walked again to the end of the program. */
static __always_inline __u32 l7_forget(__u32 x, __u32 mask) {
  volatile __u32 slot[2] __attribute__((aligned(8)));
  slot[1] = x;
  return slot[1] & mask;
}

#endif /* EA_BPF_L7_PARSER_UTIL_H */
