/* Redis (RESP2 and RESP3) parser for the L7 pairing framework: the contract is in l7.h.
 *
 * Requests are RESP arrays of bulk strings (`*<n>\r\n$<len>\r\n<arg>\r\n...`), the form every
 * client library and redis-cli use. The operation is the first argument upper-cased (the first
 * word is enough for CLIENT SETNAME, CONFIG GET, ...). Inline commands (`PING\r\n`) are not
 * recognised on purpose: they are plain text, and "GET / HTTP/1.1\r\n" would read as one.
 *
 * Replies are one RESP value of any type, aggregates included; `-` (simple error) and `!` (RESP3
 * bulk error) mark the request failed. Every reply completes one request: Redis answers in order.
 *
 * Both walk the message value by value, reading length prefixes and jumping over bulk payloads by
 * them. When the bytes run out before the message ends, the result is a lower bound of its length,
 * past `len` ("the rest lies beyond what was peeked"); a message with more values than are walked
 * (REDIS_MAX_ARGS, REDIS_MAX_VALUES) gets len + 1 - off, so that the caller takes the rest of the
 * peek as part of it.
 *
 * Written for the verifier (see l7_parser_util.h for l7_forget): the reply walk's byte loops have
 * no data-dependent branch, and positions are forgotten where paths join. One deviation from the
 * letter of l7.h: those branch-free loops read up to REDIS_LINE_MAX bytes past `len` (masked,
 * within the L7_PEEK buffer), and discard them arithmetically; no answer depends on them, which
 * the unit tests check by changing those bytes. */
#ifndef EA_BPF_L7_REDIS_H
#define EA_BPF_L7_REDIS_H

#include "l7.h"
#include "l7_parser_util.h"

/* Lengths and counts have at most 9 digits (< 1 GiB; Redis caps bulk strings at 512 MiB): the
 * digit count bounds the value, so no comparison of the value is needed (a comparison the
 * verifier can decide for short numbers would make it track every number's range apart). */
#define REDIS_MAX_DIGITS 9
#ifndef REDIS_MAX_ARGS
#define REDIS_MAX_ARGS 32 /* arguments walked per command (redis-benchmark's MSET has 21) */
#endif
#ifndef REDIS_MAX_VALUES
#define REDIS_MAX_VALUES 8 /* values walked per reply after the first (an aggregate's elements) */
#endif
#ifndef REDIS_LINE_MAX
#define REDIS_LINE_MAX 128 /* bytes of a simple line (+OK, -ERR ..., :42) searched for its end */
#endif
#ifndef REDIS_NESTED_LINE_MAX
#define REDIS_NESTED_LINE_MAX 32 /* the same inside an aggregate (:1, +QUEUED): shorter, and cheaper */
#endif
/* What a type byte introduces. */
#define RESP_INVALID 0
#define RESP_LINE 1  /* + - : _ , # ( : a line up to \r\n */
#define RESP_BULK 2  /* $ ! = : a length, \r\n, that many bytes, \r\n */
#define RESP_ARRAY 3 /* * ~ > : a count of values that follow */
#define RESP_MAP 4   /* % : a count of key/value pairs that follow */
#define RESP_ATTR 5  /* | : a count of key/value pairs, then the value they annotate */

static __always_inline __u8 resp_kind(__u8 type) {
  switch (type) {
  case '+': case '-': case ':': case '_': case ',': case '#': case '(':
    return RESP_LINE;
  case '$': case '!': case '=':
    return RESP_BULK;
  case '*': case '~': case '>':
    return RESP_ARRAY;
  case '%':
    return RESP_MAP;
  case '|':
    return RESP_ATTR;
  default:
    return RESP_INVALID;
  }
}

/* Reads `<digits>\r\n` into *value, or `-1\r\n` (RESP2's null bulk or array) setting *null, at
 * `at`. Returns the position after the \n, 0 when the bytes are not such a number, or len + 1
 * when they run out first. */
static __always_inline __u32 resp_number(const __u8 *buf, __u32 at, __u32 len, __u64 *value, int *null) {
  len = l7_forget(len, L7_POS_MASK); /* a copy: what the comparisons below teach stays here */
  if (at >= len)
    return len + 1;
  if (buf[at & L7_PEEK_MASK] == '-') {
    if (at + 3 >= len)
      return len + 1;
    if (buf[(at + 1) & L7_PEEK_MASK] != '1' || buf[(at + 2) & L7_PEEK_MASK] != '\r' ||
        buf[(at + 3) & L7_PEEK_MASK] != '\n')
      return 0;
    *null = 1;
    return l7_forget(at + 4, L7_POS_MASK);
  }
  __u64 v = 0;
  for (int i = 0; i <= REDIS_MAX_DIGITS; i++) {
    __u32 p = at + i;
    if (p >= len)
      return len + 1;
    __u8 c = buf[p & L7_PEEK_MASK];
    if (c == '\r') {
      if (i == 0)
        return 0;
      if (p + 1 >= len)
        return len + 1;
      if (buf[(p + 1) & L7_PEEK_MASK] != '\n')
        return 0;
      *value = v;
      return l7_forget(p + 2, L7_POS_MASK);
    }
    if (c < '0' || c > '9')
      return 0;
    v = v * 10 + (c - '0');
  }
  return 0;
}

/* The reply walk is written without data-dependent branches inside its loops: the verifier
 * follows one path through a branch-free loop however its bytes turn out, where a loop that
 * exits at the first \n hands each exit's different state to the rest of the walk. The asm
 * barriers keep the compiler from turning the arithmetic back into comparisons and branches. */

/* Position after the first \n at or after `at` within `max` bytes and before len, 0 if none. */
static __always_inline __u32 resp_line_end(const __u8 *buf, __u32 at, __u32 len, const int max) {
  __u32 end = 0, seen = 0;
  for (int i = 0; i < max; i++) {
    __u32 p = at + i;
    __u32 x = buf[p & L7_PEEK_MASK] ^ '\n';
    __u32 inside = (p - len) >> 31; /* 1 while p < len (both below 2^31) */
    asm volatile("" : "+r"(x), "+r"(inside));
    __u32 hit = ((x - 1) >> 31) & inside & (seen ^ 1); /* x == 0: a \n, the first one */
    end += hit * (p + 1);
    seen |= hit;
  }
  return end;
}

/* The decimal number at `at`: *digits is how many digits lead (at most REDIS_MAX_DIGITS + 1
 * are looked at), the value is theirs. Bytes past the number may lie past len: they are read
 * (within the buffer) but never counted, as the caller checks that the \r\n follows the digits. */
static __always_inline __u64 resp_digits(const __u8 *buf, __u32 at, __u32 *digits) {
  __u64 v = 0;
  __u32 in = 1, n = 0;
  for (int i = 0; i <= REDIS_MAX_DIGITS; i++) {
    __u32 d = (__u8)(buf[(at + i) & L7_PEEK_MASK] - '0');
    asm volatile("" : "+r"(d));
    in &= (d - 10) >> 31; /* still in the digits: d is 0..9 */
    asm volatile("" : "+r"(in));
    v = v * (1 + 9 * in) + in * d; /* v * 10 + d while in the digits, else unchanged */
    n += in;
  }
  *digits = n;
  return v;
}

/* Reads the value at `pos` of a reply: a simple line, or a type byte with its length or count.
 * Updates *pending, the number of values still to read (pre-order: an aggregate adds its
 * elements, an attribute its pairs). Returns the position after what it read, 0 when the bytes
 * are not RESP, or a lower bound past len of where the reply ends when it runs past len. */
static __always_inline __u32 resp_reply_value(const __u8 *buf, __u32 pos, __u32 len, const int max,
                                              __u64 *pending) {
  __u32 end = resp_line_end(buf, pos + 1, len, max);
  if (end == 0) /* the line runs past len (or is longer than max: counted as the same) */
    return resp_kind(buf[pos & L7_PEEK_MASK]) == RESP_INVALID ? 0 : len + 1;
  end = l7_forget(end, L7_POS_MASK);
  if (end < pos + 3 || buf[(end - 2) & L7_PEEK_MASK] != '\r')
    return 0;
  __u8 kind = resp_kind(buf[pos & L7_PEEK_MASK]);
  if (kind == RESP_INVALID)
    return 0;
  if (kind == RESP_LINE) {
    *pending -= 1;
    return l7_forget(end, L7_POS_MASK);
  }
  __u32 header = end - pos; /* type byte, digits, \r\n */
  if (header == 5 && buf[(pos + 1) & L7_PEEK_MASK] == '-' && buf[(pos + 2) & L7_PEEK_MASK] == '1') {
    /* -1: RESP2's null bulk string or null array */
    if (kind == RESP_ATTR)
      return 0;
    *pending -= 1;
    return l7_forget(end, L7_POS_MASK);
  }
  __u32 digits;
  __u64 value = resp_digits(buf, pos + 1, &digits);
  if (digits == 0 || digits > REDIS_MAX_DIGITS || header != digits + 3)
    return 0;
  if (kind == RESP_BULK) {
    /* Jump over the payload; its \r\n is checked when it was peeked. */
    __u32 payload_end = end + value + 2;
    *pending -= 1;
    if (payload_end > len)
      return *pending == 0 ? payload_end : payload_end + 1;
    if (buf[(payload_end - 2) & L7_PEEK_MASK] != '\r' || buf[(payload_end - 1) & L7_PEEK_MASK] != '\n')
      return 0;
    return l7_forget(payload_end, L7_POS_MASK);
  }
  if (kind == RESP_ARRAY)
    *pending += value - 1;
  else if (kind == RESP_MAP)
    *pending += 2 * value - 1;
  else
    *pending += 2 * value;
  return l7_forget(end, L7_POS_MASK);
}

/* Walks one reply starting at `off`, nested values included. Returns its length from `off`, a
 * lower bound past `len` when the bytes or REDIS_MAX_VALUES run out first, or 0 when the bytes are
 * not RESP. */
static __always_inline __u32 resp_walk_reply(const __u8 *buf, __u32 off, __u32 len) {
  if (len > L7_PEEK || off >= len)
    return 0;
  __u64 pending = 1; /* values still to read */
  __u32 pos = resp_reply_value(buf, off, len, REDIS_LINE_MAX, &pending);
  if (pos == 0)
    return 0;
  if (pos > len || pending == 0)
    return pos - off;
  for (int e = 0; e < REDIS_MAX_VALUES; e++) {
    len = l7_forget(len, L7_POS_MASK);
    pos = l7_forget(pos, L7_POS_MASK);
    /* More values than iterations left never reach 0: the count can be capped, then forgotten
     * like the positions. */
    if (pending > REDIS_MAX_VALUES + 1)
      pending = REDIS_MAX_VALUES + 1;
    pending = l7_forget(pending, 0xff);
    if (pos >= len)
      break;
    pos = resp_reply_value(buf, pos, len, REDIS_NESTED_LINE_MAX, &pending);
    if (pos == 0)
      return 0;
    if (pos > len || pending == 0)
      return pos - off;
  }
  /* Values are still pending past len or past REDIS_MAX_VALUES: at least one more byte. */
  if (pos < len)
    pos = len;
  return pos + 1 - off;
}

/* Walks one command starting at `off`: an array of at least one bulk string, none null. Sets
 * *name_at to where the first bulk string's bytes start (the command name), or leaves it 0 when
 * its header was not peeked. Returns the command's length from `off`, a lower bound past `len`
 * when the bytes or REDIS_MAX_ARGS run out first, or 0 when the bytes are not a command. */
static __always_inline __u32 resp_walk_command(const __u8 *buf, __u32 off, __u32 len, __u32 *name_at) {
  *name_at = 0;
  if (len > L7_PEEK || off >= len)
    return 0;
  if (buf[off & L7_PEEK_MASK] != '*')
    return 0;
  __u64 count = 0;
  int null = 0;
  __u32 end = resp_number(buf, off + 1, len, &count, &null);
  if (end == 0 || null || count == 0)
    return 0;
  if (end > len)
    return end - off;
  __u64 pending = count;
  __u32 pos = end;
  for (int e = 0; e < REDIS_MAX_ARGS; e++) {
    len = l7_forget(len, L7_POS_MASK);
    pos = l7_forget(pos, L7_POS_MASK);
    if (pos >= len)
      break;
    if (buf[pos & L7_PEEK_MASK] != '$')
      return 0;
    __u64 n = 0;
    null = 0;
    end = resp_number(buf, pos + 1, len, &n, &null);
    if (end == 0 || null)
      return 0;
    if (end > len)
      return end - off;
    if (e == 0)
      *name_at = end;
    /* Jump over the argument; its \r\n is checked when it was peeked. */
    __u32 arg_end = end + n + 2;
    pending--;
    if (arg_end > len)
      return pending == 0 ? arg_end - off : arg_end + 1 - off;
    if (buf[(arg_end - 2) & L7_PEEK_MASK] != '\r' || buf[(arg_end - 1) & L7_PEEK_MASK] != '\n')
      return 0;
    pos = arg_end;
    if (pending == 0)
      return pos - off;
  }
  /* Arguments are still pending past len or past REDIS_MAX_ARGS: at least one more byte. */
  if (pos < len)
    pos = len;
  return pos + 1 - off;
}

/* Upper-cases the command name at `at` into req->name. Names are letters, digits and . _ -
 * (module commands such as JSON.SET, RESTORE-ASKING); the copy stops at anything else, the \r
 * after the bulk string included, so the bulk's length is not needed. */
static __always_inline void redis_copy_name(const __u8 *buf, __u32 at, __u32 len, struct l7_request *req) {
  for (int i = 0; i < L7_OPERATION_LEN - 1; i++) {
    __u32 p = at + i;
    if (p >= len)
      break;
    __u8 c = buf[p & L7_PEEK_MASK];
    if (c >= 'a' && c <= 'z')
      c -= 'a' - 'A';
    else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      break;
    req->name[i] = c;
  }
}

static __always_inline __u32 redis_parse_request(const __u8 *buf, __u32 off, __u32 len,
                                                 struct l7_request *req) {
  __u32 name_at;
  __builtin_memset(req, 0, sizeof(*req));
  if (len > L7_PEEK || off >= len)
    return 0;
  off = l7_forget(off, L7_POS_MASK); /* the caller's paths to here may differ in what they know */
  len = l7_forget(len, L7_POS_MASK);
  __u32 length = resp_walk_command(buf, off, len, &name_at);
  /* The walk's many exits arrive here alike. */
  length = l7_forget(length, ~0u);
  name_at = l7_forget(name_at, L7_POS_MASK);
  /* Too short to tell unless the command name was peeked, its first byte at least. */
  if (length == 0 || name_at == 0 || name_at >= len)
    return 0;
  redis_copy_name(buf, name_at, len, req);
  req->counts = 1;
  return length;
}

static __always_inline __u32 redis_parse_response(const __u8 *buf, __u32 off, __u32 len,
                                                  struct l7_response *resp) {
  __builtin_memset(resp, 0, sizeof(*resp));
  if (len > L7_PEEK || off >= len)
    return 0;
  off = l7_forget(off, L7_POS_MASK); /* the caller's paths to here may differ in what they know */
  len = l7_forget(len, L7_POS_MASK);
  __u32 length = l7_forget(resp_walk_reply(buf, off, len), ~0u); /* its exits arrive here alike */
  if (length == 0)
    return 0;
  __u8 type = buf[off & L7_PEEK_MASK];
  resp->failed = type == '-' || type == '!';
  resp->completes = 1;
  return length;
}

#endif /* EA_BPF_L7_REDIS_H */
