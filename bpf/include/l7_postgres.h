/* PostgreSQL (frontend/backend protocol 3.x) parser for the L7 pairing framework: the contract is
 * in l7.h.
 *
 * Every message but the first of a connection is a type byte and a big-endian int32 length that
 * counts itself, so the walk over pipelined messages is a jump per message. The first one
 * (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest) has no type byte: an int32 length
 * and an int32 code, recognised only for the codes PostgreSQL defines.
 *
 * What counts as a request: a simple Query ('Q', named by its first SQL keyword) and a Sync ('S',
 * which closes an extended-protocol batch Parse/Bind/Describe/Execute; it has no name, so the
 * framework takes the name of a Parse earlier in the same buffer). Each is answered by exactly one
 * ReadyForQuery ('Z'), the reply that completes it; an ErrorResponse ('E') before it marks it
 * failed. Every other message is recognised with counts / completes 0 so that the framework walks
 * over it. */
#ifndef EA_BPF_L7_POSTGRES_H
#define EA_BPF_L7_POSTGRES_H

#include "l7.h"
#include "l7_parser_util.h"

#define PG_MAX_LENGTH (1u << 30)        /* the server's own limit (MaxAllocSize) */
#define PG_MAX_STARTUP_LENGTH 10000u    /* the server's MAX_STARTUP_PACKET_LENGTH */
#define PG_PROTOCOL_3_0 196608u         /* 3 << 16 */
#define PG_PROTOCOL_3_MAX_MINOR 2u      /* 3.2 (PostgreSQL 18) */
#define PG_CANCEL_REQUEST_CODE 80877102u
#define PG_SSL_REQUEST_CODE 80877103u
#define PG_GSSENC_REQUEST_CODE 80877104u
#define PG_MAX_CANCEL_KEY 256u          /* protocol 3.2 lets the secret key grow to 256 bytes */
#define PG_SKIP_MAX 64                  /* whitespace and comment bytes skipped before a keyword */
#define PG_STATEMENT_NAME_MAX 64        /* bytes searched for the end of a Parse statement name */

/* Reads a big-endian int32 at pos; the caller checked pos + 3 < len. */
static __always_inline __u32 pg_be32(const __u8 *buf, __u32 pos) {
  return ((__u32)buf[pos & L7_PEEK_MASK] << 24) | ((__u32)buf[(pos + 1) & L7_PEEK_MASK] << 16) |
         ((__u32)buf[(pos + 2) & L7_PEEK_MASK] << 8) | (__u32)buf[(pos + 3) & L7_PEEK_MASK];
}

/* Names a statement by its first SQL keyword, upper-cased, after whitespace and -- or block
 * comments (up to PG_SKIP_MAX bytes of them). Statements that start otherwise (a parenthesis, an
 * empty query, more comments than that) are named "_OTHER". `end` is where readable text stops.
 *
 * Written for the verifier: one byte per step, read at a position derived from the loop counter
 * and never looked ahead, so that every path into a step carries the same state but for the small
 * `state` below (a look-ahead byte defaulting to a constant at the end of the text made the states
 * of each step diverge). */
#define PG_TEXT 0          /* between tokens */
#define PG_DASH 1          /* after a '-': a comment if another follows */
#define PG_LINE_COMMENT 2  /* after --, up to the end of the line */
#define PG_SLASH 3         /* after a '/': a comment if a '*' follows */
#define PG_BLOCK_COMMENT 4 /* inside a block comment */
#define PG_STAR 5          /* a '*' inside a block comment: its end if a '/' follows */
static __always_inline void pg_name_statement(const __u8 *buf, __u32 at, __u32 end, struct l7_request *req) {
  at = l7_forget(at, L7_POS_MASK);
  end = l7_forget(end, L7_POS_MASK);
  __u8 state = PG_TEXT;
  __u32 start = 0; /* where the keyword starts, 0 until found */
  for (int i = 0; i < PG_SKIP_MAX; i++) {
    __u32 p = at + i;
    if (p >= end)
      break;
    __u8 c = buf[p & L7_PEEK_MASK];
    if (state == PG_LINE_COMMENT) {
      if (c == '\n')
        state = PG_TEXT;
    } else if (state == PG_BLOCK_COMMENT) {
      if (c == '*')
        state = PG_STAR;
    } else if (state == PG_STAR) {
      state = c == '/' ? PG_TEXT : c == '*' ? PG_STAR : PG_BLOCK_COMMENT;
    } else if (state == PG_DASH) {
      if (c != '-')
        break;
      state = PG_LINE_COMMENT;
    } else if (state == PG_SLASH) {
      if (c != '*')
        break;
      state = PG_BLOCK_COMMENT;
    } else if (c == '-') {
      state = PG_DASH;
    } else if (c == '/') {
      state = PG_SLASH;
    } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f') {
      /* Every step's exit arrives at the copy below alike, so it is walked once. */
      start = l7_forget(p, L7_POS_MASK);
      break;
    }
  }
  int copied = 0;
  if (start) {
    for (int i = 0; i < L7_OPERATION_LEN - 1; i++) {
      __u32 p = start + i;
      if (p >= end)
        break;
      __u8 c = buf[p & L7_PEEK_MASK];
      if (c >= 'a' && c <= 'z')
        c -= 'a' - 'A';
      else if (!(c >= 'A' && c <= 'Z'))
        break;
      req->name[i] = c;
      copied++;
    }
  }
  if (!copied)
    __builtin_memcpy(req->name, "_OTHER", 7);
}

/* The handshake only identifies the protocol: nothing is counted. */
static __always_inline __u32 pg_parse_untyped(const __u8 *buf, __u32 off, __u32 len) {
  if (len - off < 8)
    return 0;
  __u32 length = pg_be32(buf, off);
  __u32 code = pg_be32(buf, off + 4);
  if (code == PG_SSL_REQUEST_CODE || code == PG_GSSENC_REQUEST_CODE) {
    if (length != 8)
      return 0;
  } else if (code == PG_CANCEL_REQUEST_CODE) {
    if (length < 16 || length > 12 + PG_MAX_CANCEL_KEY)
      return 0;
  } else if ((code & 0xffff0000u) == PG_PROTOCOL_3_0 && (code & 0xffff) <= PG_PROTOCOL_3_MAX_MINOR) {
    /* Parameters are name/value C strings ending with an empty name: the last byte is NUL. */
    if (length < 9 || length > PG_MAX_STARTUP_LENGTH)
      return 0;
    if (off + length <= len && buf[(off + length - 1) & L7_PEEK_MASK] != 0)
      return 0;
  } else {
    return 0;
  }
  return length;
}

/* Returns the end of the C string starting at pos (the byte after its NUL), or 0 when no NUL
 * is found before `end` within PG_STATEMENT_NAME_MAX bytes. */
static __always_inline __u32 pg_skip_cstring(const __u8 *buf, __u32 pos, __u32 end) {
  for (int i = 0; i < PG_STATEMENT_NAME_MAX; i++) {
    __u32 p = pos + i;
    if (p >= end)
      return 0;
    if (buf[p & L7_PEEK_MASK] == 0)
      return p + 1;
  }
  return 0;
}

static __always_inline __u32 postgres_parse_request(const __u8 *buf, __u32 off, __u32 len,
                                                    struct l7_request *req) {
  __builtin_memset(req, 0, sizeof(*req));
  if (len > L7_PEEK || off >= len)
    return 0;
  off = l7_forget(off, L7_POS_MASK); /* the caller's paths to here may differ in what they know */
  len = l7_forget(len, L7_POS_MASK);
  __u8 type = buf[off & L7_PEEK_MASK];
  if (type == 0)
    return pg_parse_untyped(buf, off, len);
  if (len - off < 5)
    return 0;
  __u32 length = pg_be32(buf, off + 1);
  if (length < 4 || length > PG_MAX_LENGTH)
    return 0;
  __u32 end = off + 1 + length;      /* where the message ends (may be past len) */
  __u32 text_end = end < len ? end : len;
  int complete = end <= len;         /* the whole message was peeked */
  __u8 last = complete ? buf[(end - 1) & L7_PEEK_MASK] : 0;
  __u32 sql = 0; /* where SQL text to name the request by starts */
  switch (type) {
  case 'Q': /* Query: the SQL text, NUL-terminated */
    if (length < 5 || (complete && last != 0))
      return 0;
    sql = off + 5;
    req->counts = 1;
    break;
  case 'P': /* Parse: statement name, query text, int16 count, int32 type oids */
    if (length < 8)
      return 0;
    sql = pg_skip_cstring(buf, off + 5, text_end);
    break;
  case 'S': /* Sync: the batch's request */
    if (length != 4)
      return 0;
    req->counts = 1;
    break;
  case 'H': /* Flush */
  case 'X': /* Terminate */
  case 'c': /* CopyDone */
    if (length != 4)
      return 0;
    break;
  case 'B': /* Bind */
  case 'C': /* Close */
  case 'D': /* Describe */
  case 'E': /* Execute */
  case 'F': /* FunctionCall */
  case 'd': /* CopyData */
  case 'f': /* CopyFail */
  case 'p': /* PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse */
    break;
  default:
    return 0;
  }
  if (sql) /* one call site: the verifier walks the naming once */
    pg_name_statement(buf, sql, text_end, req);
  return 1 + length;
}

static __always_inline __u32 postgres_parse_response(const __u8 *buf, __u32 off, __u32 len,
                                                     struct l7_response *resp) {
  __builtin_memset(resp, 0, sizeof(*resp));
  if (len > L7_PEEK || off >= len)
    return 0;
  off = l7_forget(off, L7_POS_MASK); /* the caller's paths to here may differ in what they know */
  len = l7_forget(len, L7_POS_MASK);
  __u8 type = buf[off & L7_PEEK_MASK];
  /* The answer to SSLRequest / GSSENCRequest is a single byte, alone in its write. */
  if (len - off == 1)
    return type == 'S' || type == 'N' || type == 'G' ? 1 : 0;
  if (len - off < 5)
    return 0;
  __u32 length = pg_be32(buf, off + 1);
  if (length < 4 || length > PG_MAX_LENGTH)
    return 0;
  __u32 end = off + 1 + length;
  int complete = end <= len;
  __u8 last = complete ? buf[(end - 1) & L7_PEEK_MASK] : 0;
  switch (type) {
  case 'Z': { /* ReadyForQuery: transaction status I, T or E */
    if (length != 5)
      return 0;
    if (complete) {
      __u8 status = buf[(off + 5) & L7_PEEK_MASK];
      if (status != 'I' && status != 'T' && status != 'E')
        return 0;
    }
    resp->completes = 1;
    break;
  }
  case 'E': /* ErrorResponse: fields ending with a NUL */
  case 'N': /* NoticeResponse */
    if (length < 5 || (complete && last != 0))
      return 0;
    resp->failed = type == 'E';
    break;
  case '1': /* ParseComplete */
  case '2': /* BindComplete */
  case '3': /* CloseComplete */
  case 'I': /* EmptyQueryResponse */
  case 'n': /* NoData */
  case 's': /* PortalSuspended */
  case 'c': /* CopyDone */
    if (length != 4)
      return 0;
    break;
  case 'K': /* BackendKeyData: pid and a secret key of 4 (3.0) to 256 (3.2) bytes */
    if (length < 12 || length > 8 + PG_MAX_CANCEL_KEY)
      return 0;
    break;
  case 'R': /* Authentication* */
    if (length < 8)
      return 0;
    break;
  case 'C': /* CommandComplete: the tag, NUL-terminated */
  case 'S': /* ParameterStatus: two C strings */
    if (length < 5 || (complete && last != 0))
      return 0;
    break;
  case 'A': /* NotificationResponse */
  case 'D': /* DataRow */
  case 'G': /* CopyInResponse */
  case 'H': /* CopyOutResponse */
  case 'T': /* RowDescription */
  case 'V': /* FunctionCallResponse */
  case 'W': /* CopyBothResponse */
  case 'd': /* CopyData */
  case 't': /* ParameterDescription */
  case 'v': /* NegotiateProtocolVersion */
    break;
  default:
    return 0;
  }
  return 1 + length;
}

#endif /* EA_BPF_L7_POSTGRES_H */
