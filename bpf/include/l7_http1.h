/* HTTP/1.x request and response parsers on the contract of l7.h, with route normalisation:
 * path segments that are numbers become "{id}", hashes and UUIDs (8+ hex digits and dashes with a
 * digit among them) become "{hash}"; the query string is dropped. */
#ifndef EA_BPF_L7_HTTP1_H
#define EA_BPF_L7_HTTP1_H

#include "l7.h"

#define L7_AT(buf, i) ((buf)[(i) & L7_PEEK_MASK])

#define HTTP_MAX_METHOD 7 /* OPTIONS, CONNECT */
#define HTTP_TARGET_SCAN 128 /* request-target bytes looked at; a longer one keeps its route cut */
#define HTTP_HEAD_SCAN 256   /* header bytes searched for the head's end (to find a pipelined
                                message after it); the verifier bounds what one message may cost */

/* Character classes of a request target, from one table lookup: the route loop then keeps two
 * bit masks instead of a flag per class, which keeps the verifier's state count small. */
#define HC_DIGIT 1 /* 0-9 */
#define HC_HEX 2   /* 0-9, a-f, A-F and '-' (UUIDs): what a hash segment is made of */
#define HC_END 4   /* ' ', '\r', '\n': the target ends */
#define HC_QUERY 8 /* '?', '#': the path ends */
#define HC_SLASH 16

/* indexed by byte; written out in full (C++ has no array designators), rows of 16 from 0x00 */
static const __u8 http_char_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 4, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    4, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 16,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0, 8,
    0, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

static __always_inline int http_is_upper(__u8 c) { return c >= 'A' && c <= 'Z'; }
static __always_inline int http_is_digit(__u8 c) { return c >= '0' && c <= '9'; }
static __always_inline int http_is_hex(__u8 c) {
  return http_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static __always_inline __u8 http_method_of(__u64 token, __u32 length) {
  /* token holds the method's bytes, first byte lowest */
  switch (length) {
    case 3:
      if (token == ('G' | 'E' << 8 | 'T' << 16)) return HTTP_METHOD_GET;
      if (token == ('P' | 'U' << 8 | 'T' << 16)) return HTTP_METHOD_PUT;
      break;
    case 4:
      if (token == ('P' | 'O' << 8 | 'S' << 16 | (__u64)'T' << 24)) return HTTP_METHOD_POST;
      if (token == ('H' | 'E' << 8 | 'A' << 16 | (__u64)'D' << 24)) return HTTP_METHOD_HEAD;
      break;
    case 5:
      if (token == ('P' | 'A' << 8 | 'T' << 16 | (__u64)'C' << 24 | (__u64)'H' << 32)) return HTTP_METHOD_PATCH;
      if (token == ('T' | 'R' << 8 | 'A' << 16 | (__u64)'C' << 24 | (__u64)'E' << 32)) return HTTP_METHOD_TRACE;
      break;
    case 6:
      if (token == ('D' | 'E' << 8 | 'L' << 16 | (__u64)'E' << 24 | (__u64)'T' << 32 | (__u64)'E' << 40))
        return HTTP_METHOD_DELETE;
      break;
    case 7:
      if (token == ('O' | 'P' << 8 | 'T' << 16 | (__u64)'I' << 24 | (__u64)'O' << 32 | (__u64)'N' << 40 |
                    (__u64)'S' << 48))
        return HTTP_METHOD_OPTIONS;
      if (token == ('C' | 'O' << 8 | 'N' << 16 | (__u64)'N' << 24 | (__u64)'E' << 32 | (__u64)'C' << 40 |
                    (__u64)'T' << 48))
        return HTTP_METHOD_CONNECT;
      break;
  }
  return HTTP_METHOD_OTHER;
}

/* Ends a path segment written at route[seg_start..out), whose characters' classes ANDed give
 * `all` and ORed give `any`: a number becomes "{id}", a hash "{hash}". Returns the new output
 * length; what a longer segment leaves behind is cleared once, at the end. */
static __always_inline __u32 http_close_segment(char *route, __u32 seg_start, __u32 out, __u8 all, __u8 any) {
  __u32 seg_len = out - seg_start;
  if (seg_len == 0) return out;
  if (all & HC_DIGIT) {
    if (seg_start + 4 > L7_ROUTE_LEN - 1) return out; /* no room: keep the cut text */
    route[seg_start & (L7_ROUTE_LEN - 1)] = '{';
    route[(seg_start + 1) & (L7_ROUTE_LEN - 1)] = 'i';
    route[(seg_start + 2) & (L7_ROUTE_LEN - 1)] = 'd';
    route[(seg_start + 3) & (L7_ROUTE_LEN - 1)] = '}';
    return seg_start + 4;
  }
  if ((all & HC_HEX) && (any & HC_DIGIT) && seg_len >= 8) {
    if (seg_start + 6 > L7_ROUTE_LEN - 1) return out;
    route[seg_start & (L7_ROUTE_LEN - 1)] = '{';
    route[(seg_start + 1) & (L7_ROUTE_LEN - 1)] = 'h';
    route[(seg_start + 2) & (L7_ROUTE_LEN - 1)] = 'a';
    route[(seg_start + 3) & (L7_ROUTE_LEN - 1)] = 's';
    route[(seg_start + 4) & (L7_ROUTE_LEN - 1)] = 'h';
    route[(seg_start + 5) & (L7_ROUTE_LEN - 1)] = '}';
    return seg_start + 6;
  }
  return out;
}

/* The route loop's state. It goes through memory (a struct, and bpf_loop in the kernel) because
 * the verifier would otherwise follow every combination of its values, character by character. */
struct http_route_walk {
  const __u8 *buf;
  struct l7_request *req;
  __u32 i, len;
  __u32 out, seg_start; /* route length so far; where its last segment starts */
  __u8 all, any;        /* the segment's character classes ANDed and ORed */
  __u8 cls;             /* the class of the character that ended the walk */
  __u8 overrun;         /* the target ran past the peeked bytes */
};

/* One character of the request target; returns 1 when the path ends. */
static __always_inline long http_route_step(struct http_route_walk *w) {
  if (w->i >= w->len) {
    w->overrun = 1;
    return 1;
  }
  __u8 c = L7_AT(w->buf, w->i);
  __u8 cls = http_char_class[c];
  w->cls = cls;
  if (cls & (HC_END | HC_QUERY)) return 1;
  w->i++;
  __u32 out = w->out;
  if (cls & HC_SLASH) {
    out = http_close_segment(w->req->name, w->seg_start, out, w->all, w->any);
    if (out < L7_ROUTE_LEN - 1) w->req->name[out++ & (L7_ROUTE_LEN - 1)] = '/';
    w->out = w->seg_start = out;
    w->all = 0xff;
    w->any = 0;
    return 0;
  }
  w->all &= cls;
  w->any |= cls;
  if (out < L7_ROUTE_LEN - 1) {
    w->req->name[out & (L7_ROUTE_LEN - 1)] = c;
    w->out = out + 1;
  }
  return 0;
}

L7_STEP_CALLBACK(http_route_step)

/* Zeroes route[from..]: eight word-wide writes rather than a byte loop the verifier would walk
 * once for every way the route loop can end. */
static __always_inline void http_clear_from(char *route, __u32 from) {
  __u64 *words = (__u64 *)route;
  for (__u32 w = 0; w < L7_ROUTE_LEN / 8; w++) {
    __u32 start = w * 8;
    if (from <= start) {
      words[w] = 0;
    } else if (from < start + 8) {
      __u64 kept = ((__u64)1 << ((from - start) * 8)) - 1; /* the first (from - start) bytes */
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
      kept = ~(~(__u64)0 >> ((from - start) * 8));
#endif
      words[w] &= kept;
    }
  }
}

/* The search for the end of a header block ("\r\n\r\n"), eight bytes a step: a word without a
 * '\n' (most of them) is passed over whole, and in one that has one, each '\n' is tried as the
 * terminator's last byte. */
struct http_head_search {
  const __u8 *buf;
  __u32 from;   /* where the search started: the terminator lies wholly after it */
  __u32 i, len; /* i: the next position to look at */
  __u32 end;    /* offset just past the terminator, 0 until found */
};

static __always_inline int http_is_head_end_at(const __u8 *buf, __u32 p, __u32 len) {
  return p + 4 <= len && L7_AT(buf, p) == '\r' && L7_AT(buf, p + 1) == '\n' && L7_AT(buf, p + 2) == '\r' &&
         L7_AT(buf, p + 3) == '\n';
}

/* Eight bytes from buf[i & L7_PEEK_MASK] (the buffer has room past the mask). */
static __always_inline __u64 http_load_word(const __u8 *buf, __u32 i) {
#ifdef __bpf__
  return *(const __u64 *)&buf[i & L7_PEEK_MASK]; /* unaligned loads are allowed on map values */
#else
  __u64 word;
  __builtin_memcpy(&word, &buf[i & L7_PEEK_MASK], sizeof word);
  return word;
#endif
}

static __always_inline int http_word_has_newline(__u64 word) {
  __u64 x = word ^ 0x0a0a0a0a0a0a0a0aull; /* '\n' bytes become zero */
  return ((x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull) != 0;
}

static __always_inline long http_head_step(struct http_head_search *h) {
  __u32 i = h->i;
  if (i >= h->len) return 1;
  h->i = i + 8;
  if (i + 8 <= h->len && !http_word_has_newline(http_load_word(h->buf, i))) return 0;
  for (__u32 k = 0; k < 8; k++) {
    __u32 p = i + k;
    if (p >= h->len) return 1;
    if (L7_AT(h->buf, p) == '\n' && p >= h->from + 3 && http_is_head_end_at(h->buf, p - 3, h->len)) {
      h->end = p + 1;
      return 1;
    }
  }
  return 0;
}
L7_STEP_CALLBACK(http_head_step)

/* The offset just past the header block starting at `from`, or 0 when its end is not within
 * HTTP_HEAD_SCAN bytes or the first len. */
static __always_inline __u32 http_headers_end(const __u8 *buf, __u32 from, __u32 len) {
  struct http_head_search h = {.buf = buf, .from = from, .i = from, .len = len, .end = 0};
  L7_LOOP(HTTP_HEAD_SCAN / 8, http_head_step, &h);
  return h.end;
}

/* "GET /users/42?x=1 HTTP/1.1\r\n...": the method, the normalised route, and the length of the
 * request's head (its body, if any, is not walked: a pipelined request after a body is missed). */
static __always_inline __u32 http1_parse_request(const __u8 *buf, __u32 off, __u32 len, struct l7_request *req) {
  __u64 token = 0;
  __u32 method_len = 0;
  for (__u32 j = 0; j < HTTP_MAX_METHOD + 1; j++) {
    __u32 i = off + j;
    if (i >= len) return 0;
    __u8 c = L7_AT(buf, i);
    if (c == ' ') break;
    if (!http_is_upper(c) || j == HTTP_MAX_METHOD) return 0;
    token |= (__u64)c << (8 * j);
    method_len = j + 1;
  }
  if (method_len < 3) return 0;
  __u32 target = off + method_len + 1;
  if (target >= len) return 0;
  __u8 first = L7_AT(buf, target);
  if (first != '/' && first != '*') return 0; /* origin form or OPTIONS *; absolute URIs are proxy traffic */
  req->method = http_method_of(token, method_len);
  req->counts = 1;

  /* The path, a character at a time, into the route; then the rest of the target. */
  struct http_route_walk w = {.buf = buf, .req = req, .i = target, .len = len, .all = 0xff};
  L7_LOOP(HTTP_TARGET_SCAN, http_route_step, &w);
  if (w.overrun) return 0; /* the request line runs past the peek: not worth guessing */
  __u32 i = w.i;
  __u8 cls = w.cls;
  __u32 out = w.out;
  int target_ended = (cls & (HC_END | HC_QUERY)) != 0;
  if (target_ended) out = http_close_segment(req->name, w.seg_start, out, w.all, w.any);
  http_clear_from(req->name, out); /* what replaced segments left behind */
  if (cls & HC_QUERY) { /* the query string: find where the target ends */
    target_ended = 0;
    for (__u32 j = 0; j < HTTP_TARGET_SCAN; j++, i++) {
      if (i >= len) return 0;
      if (http_char_class[L7_AT(buf, i)] & HC_END) {
        target_ended = 1;
        break;
      }
    }
  }
  if (target_ended) {
    /* " HTTP/1." must follow, so that text that merely starts with a capitalised word is not
     * taken for a request */
    if (i + 8 > len || L7_AT(buf, i) != ' ' || L7_AT(buf, i + 1) != 'H' || L7_AT(buf, i + 2) != 'T' ||
        L7_AT(buf, i + 3) != 'T' || L7_AT(buf, i + 4) != 'P' || L7_AT(buf, i + 5) != '/' ||
        L7_AT(buf, i + 6) != '1' || L7_AT(buf, i + 7) != '.')
      return 0;
    i += 8;
  } else if (req->method == HTTP_METHOD_OTHER) {
    return 0; /* a long target: only a known method vouches for it */
  }
  __u32 end = http_headers_end(buf, i, len);
  return end ? end - off : len - off + 1; /* head not complete here: the rest is beyond len */
}

/* Where the next status line starts after `from` ("HTTP/1."), or 0 when not within
 * HTTP_HEAD_SCAN bytes or the first len: how pipelined responses are told apart. Bodies are not
 * parsed (Content-Length, chunks), so a body that itself holds "HTTP/1." would split early. */
static __always_inline __u32 http_next_status_line(const __u8 *buf, __u32 from, __u32 len) {
  for (__u32 j = 0; j < HTTP_HEAD_SCAN; j++) {
    __u32 i = from + j;
    if (i + 8 > len) break;
    if (L7_AT(buf, i) != 'H') continue;
    if (L7_AT(buf, i + 1) == 'T' && L7_AT(buf, i + 2) == 'T' && L7_AT(buf, i + 3) == 'P' &&
        L7_AT(buf, i + 4) == '/' && L7_AT(buf, i + 5) == '1' && L7_AT(buf, i + 6) == '.')
      return i;
  }
  return 0;
}

/* "HTTP/1.1 404 Not Found\r\n": the status code. With walk_body, also finds where the next
 * pipelined response starts; without it (the usual case of one outstanding request) the length
 * returned just says "the rest of this buffer". */
static __always_inline __u32 http1_parse_response_walk(const __u8 *buf, __u32 off, __u32 len,
                                                       struct l7_response *resp, int walk_body) {
  if (off + 13 > len) return 0;
  if (L7_AT(buf, off) != 'H' || L7_AT(buf, off + 1) != 'T' || L7_AT(buf, off + 2) != 'T' ||
      L7_AT(buf, off + 3) != 'P' || L7_AT(buf, off + 4) != '/' || L7_AT(buf, off + 5) != '1' ||
      L7_AT(buf, off + 6) != '.' || L7_AT(buf, off + 8) != ' ')
    return 0;
  __u8 d0 = L7_AT(buf, off + 9), d1 = L7_AT(buf, off + 10), d2 = L7_AT(buf, off + 11);
  if (d0 < '1' || d0 > '5' || !http_is_digit(d1) || !http_is_digit(d2)) return 0;
  __u8 after = L7_AT(buf, off + 12);
  if (after != ' ' && after != '\r') return 0;
  resp->status = (d0 - '0') * 100 + (d1 - '0') * 10 + (d2 - '0');
  resp->completes = resp->status >= 200 || resp->status == 101; /* 1xx are interim, but 101 switches */
  resp->failed = 0;
  if (!walk_body) return len - off + 1;
  __u32 next = http_next_status_line(buf, off + 13, len);
  return next ? next - off : len - off + 1;
}

static __always_inline __u32 http1_parse_response(const __u8 *buf, __u32 off, __u32 len, struct l7_response *resp) {
  return http1_parse_response_walk(buf, off, len, resp, 1);
}

#endif /* EA_BPF_L7_HTTP1_H */
