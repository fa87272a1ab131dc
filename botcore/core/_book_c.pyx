# cython: language_level=3, embedsignature=True
"""L2 order book, compiled (fields and signatures in ``_book_c.pxd``; pure twin: ``_book_py``).

Same API, rules and answers as the pure-Python twin; read ``_book_py`` for the semantics. What
is different here is only how:

* each side is one C array of ``(key, qty)`` sorted ascending with the best level LAST (key =
  price for bids, -price for asks): the best level is ``levels[n - 1]``, a change near the
  touch moves only the few levels above it (search + memmove), and a whole diff side (Binance
  sends it sorted) is applied in one pass that moves each untouched run of levels at most once;
* ``apply_json``/``apply_snapshot_json`` decode Binance's JSON themselves with a small scanner
  that only knows the canonical depthUpdate/bookTicker/snapshot shapes: decimal strings go
  straight to int64 ticks, nothing is allocated per message. The scanner validates strictly but
  gives up on anything unusual (escapes, non-ASCII, malformed or surprising input) and hands
  the frame to the twin's decoder, which then accepts or rejects it exactly as the twin does.
  Every frame is fully decoded into scratch arrays before the book is touched, so a bad frame
  leaves the book unchanged.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.stdint cimport INT64_MAX, int64_t, uint64_t
from libc.string cimport memcmp, memmove

from operator import index as _index

from botcore.core._book_py import decode_frame as _decode_frame
from botcore.core._book_py import decode_snapshot as _decode_snapshot


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL
    bint PyUnicode_IS_ASCII(object s)


APPLIED = RC_APPLIED
STALE = RC_STALE
GAP = RC_GAP
NOT_SYNCED = RC_NOT_SYNCED
IGNORED = RC_IGNORED
EMPTY = ST_EMPTY
SYNCING = ST_SYNCING
LIVE = ST_LIVE
RESYNC_NEEDED = ST_RESYNC_NEEDED

_STATE_NAMES = ("EMPTY", "SYNCING", "LIVE", "RESYNC_NEEDED")

cdef extern from *:
    """
    #include <string.h>
    #define BOOK_I64_MAX_DIV10 922337203685477580LL
    #define BOOK_ZEROS 0x3030303030303030ULL  /* "00000000" */

    static const int64_t book_pow10[19] = {
        1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL, 100000000LL,
        1000000000LL, 10000000000LL, 100000000000LL, 1000000000000LL, 10000000000000LL,
        100000000000000LL, 1000000000000000LL, 10000000000000000LL, 100000000000000000LL,
        1000000000000000000LL};

    #if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    #define BOOK_SWAR 1
    #else
    #define BOOK_SWAR 0
    #endif

    /* The value of eight ASCII digits held in a little-endian word, first digit in byte 0. */
    static inline uint64_t book_swar8(uint64_t v) {
        v -= BOOK_ZEROS;
        v = (v * 10) + (v >> 8);
        return (((v & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32))) +
                (((v >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32)))) >> 32;
    }

    /* Eight ASCII digits (already checked) to their value. */
    static inline uint64_t book_parse8(const unsigned char* p) {
    #if BOOK_SWAR
        uint64_t v;
        memcpy(&v, p, 8);
        return book_swar8(v);
    #else
        uint64_t v = 0;
        for (int i = 0; i < 8; i++) v = v * 10 + (uint64_t)(p[i] - '0');
        return v;
    #endif
    }

    /* Fast path for the decimals Binance prints ("61837.63000000", "0.00100000", "12"): 1..7
       integer digits, then the closing quote, or '.' + exactly 8 decimals + the quote. Branch-free
       digit checks on whole words. ``s`` is just past the opening quote and at least 17 bytes
       follow it. Returns the bytes consumed including the closing quote, or 0: not this shape
       (or too big, or nonzero decimals beyond ``precision``), use the general path. */
    static inline Py_ssize_t book_decimal_fast(const unsigned char* s, int precision, int64_t* out) {
    #if BOOK_SWAR
        uint64_t x, y, t, m, whole, frac = 0;
        int n;
        Py_ssize_t used;
        memcpy(&x, s, 8);
        t = x ^ BOOK_ZEROS;                                   /* digits become 0x00..0x09 */
        m = ((t + 0x7676767676767676ULL) | t) & 0x8080808080808080ULL;  /* high bit: not a digit */
        if (m == 0) return 0;
        n = __builtin_ctzll(m) >> 3;                          /* integer digits */
        if (n == 0 || n + precision > 18) return 0;
        whole = book_swar8((x << (8 * (8 - n))) | (BOOK_ZEROS >> (8 * n)));
        if (s[n] == '"') {
            used = n + 1;
        } else if (s[n] == '.' && s[n + 9] == '"') {
            memcpy(&y, s + n + 1, 8);
            t = y ^ BOOK_ZEROS;
            if ((((t + 0x7676767676767676ULL) | t) & 0x8080808080808080ULL) != 0) return 0;
            if (precision >= 8) {
                frac = book_swar8(y) * (uint64_t)book_pow10[precision - 8];
            } else if (precision == 0) {
                if (y != BOOK_ZEROS) return 0;
            } else {
                if ((y >> (8 * precision)) != (BOOK_ZEROS >> (8 * precision))) return 0;
                frac = book_swar8((y << (8 * (8 - precision))) | (BOOK_ZEROS >> (8 * precision)));
            }
            used = n + 10;
        } else {
            return 0;
        }
        *out = (int64_t)(whole * (uint64_t)book_pow10[precision] + frac);
        return used;
    #else
        (void)s; (void)precision; (void)out;
        return 0;
    #endif
    }
    """
    int64_t I64_MAX_DIV10 "BOOK_I64_MAX_DIV10"
    const int64_t* POW10 "book_pow10"
    uint64_t book_parse8(const unsigned char* p) noexcept
    Py_ssize_t book_decimal_fast(const unsigned char* s, int precision, int64_t* out) noexcept

cdef enum:
    MAX_PRECISION = 18   # 10**18 still fits int64
    MAX_NESTING = 64     # deeper JSON is left to the twin (and its RecursionError handling)

cdef enum:
    # scanner results
    SCAN_OK = 0
    SCAN_FALLBACK = -1   # not sure: let the twin's decoder decide (it accepts or raises)
    SCAN_NOMEM = -2
    # Frame.event
    E_ABSENT = 0
    E_DEPTH = 1
    E_TICKER = 2
    E_OTHER = 3
    # Frame.*_kind
    V_ABSENT = 0
    V_LEVELS = 1
    V_DECIMAL = 2
    V_OTHER = 3
    # Frame.sym
    S_ABSENT = 0
    S_MATCH = 1
    S_MISMATCH = 2


# ---------------------------------------------------------------------------------------------
# Ladders: sorted C arrays of levels, best last
# ---------------------------------------------------------------------------------------------

cdef int _reserve(Ladder* ladder, Py_ssize_t need) noexcept:
    """Grow capacity to at least ``need`` levels; -1 if out of memory (ladder untouched)."""
    cdef Py_ssize_t cap
    cdef Level* grown
    if need <= ladder.cap:
        return 0
    cap = ladder.cap * 2 if ladder.cap else 64
    while cap < need:
        cap *= 2
    grown = <Level*>PyMem_Realloc(ladder.levels, cap * sizeof(Level))
    if grown is NULL:
        return -1
    ladder.levels = grown
    ladder.cap = cap
    return 0


cdef inline Py_ssize_t _lower_bound(const Ladder* ladder, int64_t key) noexcept:
    """First index whose key is >= ``key`` (``n`` if none).

    Updates cluster near the touch (on the recording: median 87 levels below the top of a
    2-3k level side), so the search gallops down from the top, staying in the hot end of the
    array, then halves the bracket branch-free (arithmetic step, no mispredicted jumps).
    """
    cdef const Level* levels = ladder.levels
    cdef const Level* base
    cdef Py_ssize_t n = ladder.n, hi, lo, step = 1, size, half
    if n == 0 or levels[n - 1].key < key:
        return n
    hi = n - 1  # levels[hi].key >= key
    lo = hi - 1
    while lo >= 0 and levels[lo].key >= key:
        hi = lo
        step <<= 1
        lo = hi - step
    # answer in [lo + 1, hi]
    if lo < 0:
        lo = -1
    base = levels + lo + 1
    size = hi - lo
    while size > 1:
        half = size >> 1
        base += (base[half - 1].key < key) * half
        size -= half
    return base - levels


cdef inline void _set_level(Ladder* ladder, int64_t key, int64_t qty) noexcept:
    """Absolute quantity at ``key``; 0 deletes. Capacity for one more level must be reserved."""
    cdef Py_ssize_t i = _lower_bound(ladder, key)
    cdef Level* levels = ladder.levels
    if i < ladder.n and levels[i].key == key:
        if qty:
            levels[i].qty = qty
        else:
            memmove(&levels[i], &levels[i + 1], (ladder.n - i - 1) * sizeof(Level))
            ladder.n -= 1
    elif qty:
        memmove(&levels[i + 1], &levels[i], (ladder.n - i) * sizeof(Level))
        levels[i].key = key
        levels[i].qty = qty
        ladder.n += 1


cdef void _apply_side(Ladder* ladder, const Ladder* updates, int64_t sign, Ladder* slots) noexcept:
    """Apply one side of a diff (wire order, key = price). Capacity: ``ladder`` n + k levels,
    ``slots`` k.

    Binance lists a side best first with distinct prices, and on the recording 80% of the
    levels are inserts or deletes with a long tail deep into the book, so memmove-ing the levels
    above each of them one at a time moves the same top levels over and over. Instead: find
    where every update lands in the unchanged ladder, then move each untouched run of levels
    between two updates exactly once, by the net count of inserts minus deletes below it (runs
    moving down bottom-up, runs moving up top-down, runs whose shift is 0 not at all), then
    write the updated levels into their final slots. Any other order is applied level by level.
    """
    cdef Py_ssize_t k = updates.n, n = ladder.n, i, t, j, size, half, seg_start, seg_end, shift, total = 0
    cdef Level* levels = ladder.levels
    cdef Level* slot = slots.levels  # per update, deepest first: key = landing index, qty = found
    cdef const Level* upd
    if k == 0:
        return
    for i in range(1, k):
        if sign * updates.levels[i].key >= sign * updates.levels[i - 1].key:
            k = 0  # not strictly best first
            break
    if k <= 1:
        for i in range(updates.n):
            _set_level(ladder, sign * updates.levels[i].key, updates.levels[i].qty)
        return
    # Where each update lands: k binary searches run in lockstep (same halving steps), so their
    # loads are independent and overlap instead of each search waiting on its own chain of
    # dependent loads (measured: the search was the largest cost of applying a diff).
    for t in range(k):  # t-th deepest update = wire index k - 1 - t
        slot[t].key = 0
    size = n
    while size > 1:
        half = size >> 1
        for t in range(k):
            slot[t].key += (levels[slot[t].key + half - 1].key < sign * updates.levels[k - 1 - t].key) * half
        size -= half
    for t in range(k):
        upd = &updates.levels[k - 1 - t]
        j = slot[t].key
        if n:
            j += levels[j].key < sign * upd.key
        slot[t].key = j
        slot[t].qty = j < n and levels[j].key == sign * upd.key
        total += (upd.qty > 0) - slot[t].qty
    # runs moving down, bottom-up
    shift = 0
    for t in range(k):
        shift += (updates.levels[k - 1 - t].qty > 0) - slot[t].qty
        if shift < 0:
            seg_start = slot[t].key + slot[t].qty
            seg_end = slot[t + 1].key if t + 1 < k else n
            memmove(levels + seg_start + shift, levels + seg_start, (seg_end - seg_start) * sizeof(Level))
    # runs moving up, top-down
    shift = total
    for t in range(k - 1, -1, -1):
        if shift > 0:
            seg_start = slot[t].key + slot[t].qty
            seg_end = slot[t + 1].key if t + 1 < k else n
            memmove(levels + seg_start + shift, levels + seg_start, (seg_end - seg_start) * sizeof(Level))
        shift -= (updates.levels[k - 1 - t].qty > 0) - slot[t].qty
    # the updated levels into their final slots
    shift = 0
    for t in range(k):
        upd = &updates.levels[k - 1 - t]
        if upd.qty > 0:
            levels[slot[t].key + shift].key = sign * upd.key
            levels[slot[t].key + shift].qty = upd.qty
        shift += (upd.qty > 0) - slot[t].qty
    ladder.n = n + total


cdef void _fill(Ladder* ladder, const Ladder* src, int64_t sign) noexcept:
    """Load a snapshot side (wire order, key = price) into an empty ladder reserved for it.

    Binance sends each side best first with distinct prices, so the fast path is a reversed
    copy; anything else is applied level by level, like a diff onto an empty side.
    """
    cdef Py_ssize_t i, n = src.n
    cdef bint best_first = True
    for i in range(n):
        if src.levels[i].qty <= 0 or (i and sign * src.levels[i].key >= sign * src.levels[i - 1].key):
            best_first = False
            break
    ladder.n = 0
    if best_first:
        for i in range(n):
            ladder.levels[n - 1 - i].key = sign * src.levels[i].key
            ladder.levels[n - 1 - i].qty = src.levels[i].qty
        ladder.n = n
    else:
        for i in range(n):
            _set_level(ladder, sign * src.levels[i].key, src.levels[i].qty)


cdef inline int64_t _i64(object value) except? -1:
    """An int64 from an int-like object; TypeError for floats/str (no truncation)."""
    if type(value) is not int:
        value = _index(value)
    return value


cdef int _check_levels(const Ladder* levels) except -1:
    cdef Py_ssize_t i
    for i in range(levels.n):
        if levels.levels[i].key <= 0:
            raise ValueError(f"level price must be positive, got {levels.levels[i].key}")
        if levels.levels[i].qty < 0:
            raise ValueError(f"level quantity must not be negative, got {levels.levels[i].qty}")
    return 0


cdef int _load_levels(Ladder* out, object levels) except -1:
    """Copy Python (price, qty) pairs into scratch, validating in the twin's order."""
    cdef int64_t price, qty
    out.n = 0
    for level in levels:
        p, q = level
        price = _i64(p)
        qty = _i64(q)
        if price <= 0:
            raise ValueError(f"level price must be positive, got {price}")
        if qty < 0:
            raise ValueError(f"level quantity must not be negative, got {qty}")
        if _reserve(out, out.n + 1):
            raise MemoryError()
        out.levels[out.n].key = price
        out.levels[out.n].qty = qty
        out.n += 1
    return 0


cdef list _side_list(const Ladder* ladder, Py_ssize_t n, int64_t sign):
    if n < 0:
        raise ValueError(f"n must not be negative, got {n}")
    cdef Py_ssize_t i, top = ladder.n - 1
    if n > ladder.n:
        n = ladder.n
    return [(sign * ladder.levels[top - i].key, ladder.levels[top - i].qty) for i in range(n)]


cdef void _free_ladder(Ladder* ladder) noexcept:
    PyMem_Free(ladder.levels)
    ladder.levels = NULL
    ladder.n = ladder.cap = 0


# ---------------------------------------------------------------------------------------------
# JSON scanner. Buffers are NUL-terminated (bytes objects and PyUnicode_AsUTF8 both are), and a
# NUL never matches what the scanner expects, so it doubles as the end-of-input sentinel: no
# loop reads past the terminator. A NUL inside the input makes the final position check fail.
# ---------------------------------------------------------------------------------------------

cdef struct Cur:
    const unsigned char* p
    const unsigned char* end


cdef inline bint _is_digit(unsigned char ch) noexcept:
    return <unsigned char>(ch - 48) < 10


cdef inline void _ws(Cur* c) noexcept:
    cdef unsigned char ch = c.p[0]
    while ch == 32 or ch == 10 or ch == 13 or ch == 9:
        c.p += 1
        ch = c.p[0]


cdef inline int _skip_string(Cur* c) noexcept:
    """From the opening quote to just after the closing one; escapes/non-ASCII -> fallback."""
    cdef const unsigned char* p = c.p + 1
    cdef unsigned char ch
    while True:
        ch = p[0]
        if ch == 34:  # "
            c.p = p + 1
            return SCAN_OK
        if ch < 32 or ch == 92 or ch >= 128:  # control (incl. the NUL sentinel), backslash, UTF-8
            return SCAN_FALLBACK
        p += 1


cdef int _skip_number(Cur* c) noexcept:
    """A JSON number, strictly by the grammar."""
    cdef const unsigned char* p = c.p
    if p[0] == 45:  # -
        p += 1
    if p[0] == 48:  # 0
        p += 1
    elif _is_digit(p[0]):
        while _is_digit(p[0]):
            p += 1
    else:
        return SCAN_FALLBACK
    if p[0] == 46:  # .
        p += 1
        if not _is_digit(p[0]):
            return SCAN_FALLBACK
        while _is_digit(p[0]):
            p += 1
    if p[0] == 101 or p[0] == 69:  # e E
        p += 1
        if p[0] == 43 or p[0] == 45:
            p += 1
        if not _is_digit(p[0]):
            return SCAN_FALLBACK
        while _is_digit(p[0]):
            p += 1
    c.p = p
    return SCAN_OK


cdef inline int _skip_literal(Cur* c, const char* word, Py_ssize_t size) noexcept:
    cdef Py_ssize_t i
    for i in range(size):  # stops at the first mismatch, so never passes the NUL sentinel
        if c.p[i] != <unsigned char>word[i]:
            return SCAN_FALLBACK
    c.p += size
    return SCAN_OK


cdef int _skip_value(Cur* c, int depth) noexcept:
    """Any JSON value (validated, not decoded)."""
    cdef unsigned char ch = c.p[0]
    cdef int rc
    if ch == 34:
        return _skip_string(c)
    if ch == 45 or _is_digit(ch):
        return _skip_number(c)
    if ch == 116:
        return _skip_literal(c, b"true", 4)
    if ch == 102:
        return _skip_literal(c, b"false", 5)
    if ch == 110:
        return _skip_literal(c, b"null", 4)
    if ch != 123 and ch != 91:  # { [
        return SCAN_FALLBACK
    if depth >= MAX_NESTING:
        return SCAN_FALLBACK
    c.p += 1
    _ws(c)
    if (ch == 123 and c.p[0] == 125) or (ch == 91 and c.p[0] == 93):
        c.p += 1
        return SCAN_OK
    while True:
        if ch == 123:  # object member: "key" : value
            if c.p[0] != 34:
                return SCAN_FALLBACK
            rc = _skip_string(c)
            if rc:
                return rc
            _ws(c)
            if c.p[0] != 58:  # :
                return SCAN_FALLBACK
            c.p += 1
            _ws(c)
        rc = _skip_value(c, depth + 1)
        if rc:
            return rc
        _ws(c)
        if c.p[0] == 44:  # ,
            c.p += 1
            _ws(c)
        elif (ch == 123 and c.p[0] == 125) or (ch == 91 and c.p[0] == 93):
            c.p += 1
            return SCAN_OK
        else:
            return SCAN_FALLBACK


cdef int _parse_id(Cur* c, int64_t* out) noexcept:
    """A non-negative JSON integer that fits int64; anything else -> fallback."""
    cdef const unsigned char* start = c.p
    cdef const unsigned char* p = start
    cdef int64_t v = 0, d
    while _is_digit(p[0]):
        p += 1
    if p == start or (start[0] == 48 and p - start > 1):  # no digits, or a leading 0
        return SCAN_FALLBACK
    if p[0] == 46 or p[0] == 101 or p[0] == 69:  # fraction or exponent: not an int
        return SCAN_FALLBACK
    if p - start <= 18:
        v = <int64_t>_digits(start, p - start)
    else:
        for d in range(p - start):
            if v > I64_MAX_DIV10 or (v == I64_MAX_DIV10 and start[d] - 48 > 7):
                return SCAN_FALLBACK
            v = v * 10 + (start[d] - 48)
    c.p = p
    out[0] = v
    return SCAN_OK


cdef inline uint64_t _digits(const unsigned char* p, Py_ssize_t n) noexcept:
    """Value of ``n`` <= 18 ASCII digits (already checked to be digits); 8 at a time."""
    cdef uint64_t v = 0
    while n >= 8:
        v = v * 100000000 + book_parse8(p)
        p += 8
        n -= 8
    while n > 0:
        v = v * 10 + (p[0] - 48)
        p += 1
        n -= 1
    return v


cdef inline int _parse_decimal(Cur* c, int precision, int64_t* out) noexcept:
    """``"123.4500"`` -> int64 units of 10**-precision (``c`` at the opening quote).

    Binance's own shape takes the branch-free word-at-a-time path inline; the rest goes to the
    general parser. Signs, exponents, blanks, more nonzero decimals than ``precision`` and
    overflow all fall back (and the twin then rejects them); so do more than 18 integer digits
    (leading zeros), which Binance never sends.
    """
    cdef Py_ssize_t used
    if c.end - c.p >= 18:
        used = book_decimal_fast(c.p + 1, precision, out)
        if used:
            c.p += used + 1
            return SCAN_OK
    return _parse_decimal_general(c, precision, out)


@cython.cdivision(True)  # the only division is by a power of ten: no zero check needed
cdef int _parse_decimal_general(Cur* c, int precision, int64_t* out) noexcept:
    cdef const unsigned char* whole = c.p + 1  # past the opening quote
    cdef const unsigned char* frac
    cdef const unsigned char* p = whole
    cdef Py_ssize_t n_whole, n_frac = 0, used = 0, i
    cdef uint64_t whole_value, frac_value = 0
    while _is_digit(p[0]):
        p += 1
    n_whole = p - whole
    if n_whole == 0 or n_whole > 18:
        return SCAN_FALLBACK
    if p[0] == 46:  # .
        p += 1
        frac = p
        while _is_digit(p[0]):
            p += 1
        n_frac = p - frac
        if n_frac == 0:
            return SCAN_FALLBACK
        used = n_frac if n_frac < precision else precision
        for i in range(used, n_frac):  # digits beyond the precision must be zeros
            if frac[i] != 48:
                return SCAN_FALLBACK
        frac_value = _digits(frac, used) * <uint64_t>POW10[precision - used]
    if p[0] != 34:
        return SCAN_FALLBACK
    whole_value = _digits(whole, n_whole)
    # below 10**18 when n_whole + precision <= 18; otherwise check against int64
    if n_whole + precision > 18 and whole_value > (<uint64_t>INT64_MAX - frac_value) / <uint64_t>POW10[precision]:
        return SCAN_FALLBACK
    c.p = p + 1
    out[0] = <int64_t>(whole_value * <uint64_t>POW10[precision] + frac_value)
    return SCAN_OK


cdef int _parse_levels(Cur* c, Ladder* out, int price_precision, int qty_precision) noexcept:
    """``[["price","qty"],...]`` into scratch (key = price), in wire order."""
    cdef int rc
    cdef int64_t price, qty
    out.n = 0
    c.p += 1
    _ws(c)
    if c.p[0] == 93:
        c.p += 1
        return SCAN_OK
    while True:
        if c.p[0] != 91:
            return SCAN_FALLBACK
        c.p += 1
        _ws(c)
        if c.p[0] != 34:
            return SCAN_FALLBACK
        rc = _parse_decimal(c, price_precision, &price)
        if rc:
            return rc
        _ws(c)
        if c.p[0] != 44:
            return SCAN_FALLBACK
        c.p += 1
        _ws(c)
        if c.p[0] != 34:
            return SCAN_FALLBACK
        rc = _parse_decimal(c, qty_precision, &qty)
        if rc:
            return rc
        _ws(c)
        if c.p[0] != 93:
            return SCAN_FALLBACK
        c.p += 1
        if out.n == out.cap and _reserve(out, out.n + 1):
            return SCAN_NOMEM
        out.levels[out.n].key = price
        out.levels[out.n].qty = qty
        out.n += 1
        _ws(c)
        if c.p[0] == 44:
            c.p += 1
            _ws(c)
        elif c.p[0] == 93:
            c.p += 1
            return SCAN_OK
        else:
            return SCAN_FALLBACK


cdef inline int _value_kind_skip(Cur* c, int depth, int* kind) noexcept:
    kind[0] = V_OTHER
    return _skip_value(c, depth)


cdef int _scan_payload(Cur* c, Frame* f, Frame* inner, const unsigned char* symbol,
                       Py_ssize_t symbol_len, int price_precision, int qty_precision,
                       int depth) noexcept:
    """One JSON object: record what a depthUpdate/bookTicker needs, skip (validate) the rest.

    With ``inner`` set this is the top level, where ``"stream"``/``"data"`` of a combined-stream
    envelope are recognised and the ``data`` object is scanned into ``inner``.
    """
    cdef const unsigned char* key
    cdef const unsigned char* value
    cdef Py_ssize_t key_len, value_len
    cdef unsigned char ch
    cdef int rc
    f.event = E_ABSENT
    f.has_U = f.has_u_key = f.has_u = False
    f.b_kind = f.a_kind = f.B_kind = f.A_kind = V_ABSENT
    f.sym = S_ABSENT
    f.has_stream = f.has_data = f.data_is_object = False
    f.bids.n = f.asks.n = 0
    c.p += 1
    _ws(c)
    if c.p[0] == 125:
        c.p += 1
        return SCAN_OK
    while True:
        if c.p[0] != 34:
            return SCAN_FALLBACK
        key = c.p + 1
        rc = _skip_string(c)
        if rc:
            return rc
        key_len = c.p - key - 1
        _ws(c)
        if c.p[0] != 58:
            return SCAN_FALLBACK
        c.p += 1
        _ws(c)
        ch = c.p[0]
        if key_len == 1:
            if key[0] == 101:  # e
                if ch == 34:
                    value = c.p + 1
                    rc = _skip_string(c)
                    value_len = c.p - value - 1
                    if value_len == 11 and memcmp(value, b"depthUpdate", 11) == 0:
                        f.event = E_DEPTH
                    elif value_len == 10 and memcmp(value, b"bookTicker", 10) == 0:
                        f.event = E_TICKER
                    else:
                        f.event = E_OTHER
                else:
                    f.event = E_ABSENT if ch == 110 else E_OTHER  # "e": null counts as absent
                    rc = _skip_value(c, depth + 1)
            elif key[0] == 85:  # U
                f.has_U = _is_digit(ch)
                rc = _parse_id(c, &f.first_id) if f.has_U else _skip_value(c, depth + 1)
            elif key[0] == 117:  # u
                f.has_u_key = True
                f.has_u = _is_digit(ch)
                rc = _parse_id(c, &f.final_id) if f.has_u else _skip_value(c, depth + 1)
            elif key[0] == 98:  # b
                if ch == 91:
                    f.b_kind = V_LEVELS
                    rc = _parse_levels(c, &f.bids, price_precision, qty_precision)
                elif ch == 34:
                    f.b_kind = V_DECIMAL
                    rc = _parse_decimal(c, price_precision, &f.bid_price)
                else:
                    rc = _value_kind_skip(c, depth + 1, &f.b_kind)
            elif key[0] == 97:  # a
                if ch == 91:
                    f.a_kind = V_LEVELS
                    rc = _parse_levels(c, &f.asks, price_precision, qty_precision)
                elif ch == 34:
                    f.a_kind = V_DECIMAL
                    rc = _parse_decimal(c, price_precision, &f.ask_price)
                else:
                    rc = _value_kind_skip(c, depth + 1, &f.a_kind)
            elif key[0] == 66:  # B
                if ch == 34:
                    f.B_kind = V_DECIMAL
                    rc = _parse_decimal(c, qty_precision, &f.bid_qty)
                else:
                    rc = _value_kind_skip(c, depth + 1, &f.B_kind)
            elif key[0] == 65:  # A
                if ch == 34:
                    f.A_kind = V_DECIMAL
                    rc = _parse_decimal(c, qty_precision, &f.ask_qty)
                else:
                    rc = _value_kind_skip(c, depth + 1, &f.A_kind)
            elif key[0] == 115:  # s
                if ch == 34:
                    value = c.p + 1
                    rc = _skip_string(c)
                    value_len = c.p - value - 1
                    f.sym = S_MATCH if (value_len == symbol_len and
                                        memcmp(value, symbol, symbol_len) == 0) else S_MISMATCH
                else:
                    f.sym = S_ABSENT if ch == 110 else S_MISMATCH  # "s": null counts as absent
                    rc = _skip_value(c, depth + 1)
            else:
                rc = _skip_value(c, depth + 1)
        elif inner is not NULL and key_len == 4 and memcmp(key, b"data", 4) == 0:
            f.has_data = True
            f.data_is_object = ch == 123
            if ch == 123:
                rc = _scan_payload(c, inner, NULL, symbol, symbol_len, price_precision,
                                   qty_precision, depth + 1)
            else:
                rc = _skip_value(c, depth + 1)
        elif inner is not NULL and key_len == 6 and memcmp(key, b"stream", 6) == 0:
            f.has_stream = True
            rc = _skip_value(c, depth + 1)
        else:
            rc = _skip_value(c, depth + 1)
        if rc:
            return rc
        _ws(c)
        if c.p[0] == 44:
            c.p += 1
            _ws(c)
        elif c.p[0] == 125:
            c.p += 1
            return SCAN_OK
        else:
            return SCAN_FALLBACK


cdef int _scan_snapshot(Cur* c, Frame* f, int price_precision, int qty_precision) noexcept:
    """``{"lastUpdateId":N,"bids":[...],"asks":[...]}``; other keys skipped."""
    cdef const unsigned char* key
    cdef Py_ssize_t key_len
    cdef unsigned char ch
    cdef int rc
    f.has_u = False
    f.b_kind = f.a_kind = V_ABSENT
    f.bids.n = f.asks.n = 0
    if c.p[0] != 123:
        return SCAN_FALLBACK
    c.p += 1
    _ws(c)
    if c.p[0] == 125:
        c.p += 1
        return SCAN_OK
    while True:
        if c.p[0] != 34:
            return SCAN_FALLBACK
        key = c.p + 1
        rc = _skip_string(c)
        if rc:
            return rc
        key_len = c.p - key - 1
        _ws(c)
        if c.p[0] != 58:
            return SCAN_FALLBACK
        c.p += 1
        _ws(c)
        ch = c.p[0]
        if key_len == 12 and memcmp(key, b"lastUpdateId", 12) == 0:
            f.has_u = _is_digit(ch)
            rc = _parse_id(c, &f.final_id) if f.has_u else _skip_value(c, 1)
        elif key_len == 4 and memcmp(key, b"bids", 4) == 0:
            f.b_kind = V_LEVELS if ch == 91 else V_OTHER
            rc = _parse_levels(c, &f.bids, price_precision, qty_precision) if ch == 91 else _skip_value(c, 1)
        elif key_len == 4 and memcmp(key, b"asks", 4) == 0:
            f.a_kind = V_LEVELS if ch == 91 else V_OTHER
            rc = _parse_levels(c, &f.asks, price_precision, qty_precision) if ch == 91 else _skip_value(c, 1)
        else:
            rc = _skip_value(c, 1)
        if rc:
            return rc
        _ws(c)
        if c.p[0] == 44:
            c.p += 1
            _ws(c)
        elif c.p[0] == 125:
            c.p += 1
            return SCAN_OK
        else:
            return SCAN_FALLBACK


cdef inline int _buffer(object raw, Cur* c) except -1:
    """Point ``c`` at the bytes of ``raw``: 0 = scan, 1 = use the twin (non-ASCII str)."""
    cdef Py_ssize_t size
    if type(raw) is bytes:
        c.p = <const unsigned char*>PyBytes_AS_STRING(raw)
        size = PyBytes_GET_SIZE(raw)
    elif type(raw) is str:
        if not PyUnicode_IS_ASCII(raw):
            return 1
        c.p = <const unsigned char*>PyUnicode_AsUTF8AndSize(raw, &size)
    else:
        raise TypeError(f"raw must be bytes or str, not {type(raw).__name__}")
    c.end = c.p + size
    return 0


# ---------------------------------------------------------------------------------------------
# The book
# ---------------------------------------------------------------------------------------------

@cython.auto_pickle(False)
cdef class OrderBook:
    """L2 book of one symbol, synced exactly by Binance's rules, with a bookTicker overlay.

    ``top()`` and the ``best_*`` properties are fused: the last accepted bookTicker while its id
    is newer than the ladder's, the ladder's best levels otherwise.
    """

    def __init__(self, symbol, price_precision, qty_precision=8):
        if type(symbol) is not str or not symbol:
            raise ValueError("symbol must be a non-empty str")
        for name, value in (("price_precision", price_precision), ("qty_precision", qty_precision)):
            if not 0 <= _index(value) <= MAX_PRECISION:
                raise ValueError(f"{name} must be in 0..{MAX_PRECISION}, got {value}")
        self.symbol = symbol
        self.price_precision = price_precision
        self.qty_precision = qty_precision
        self._symbol_upper = symbol.upper().encode()
        self.clear()

    def __dealloc__(self):
        _free_ladder(&self._bids)
        _free_ladder(&self._asks)
        _free_ladder(&self._outer.bids)
        _free_ladder(&self._outer.asks)
        _free_ladder(&self._inner.bids)
        _free_ladder(&self._inner.asks)
        _free_ladder(&self._slots)

    # -- updates --------------------------------------------------------------------------------
    cpdef void clear(self) noexcept:
        """Forget everything: no levels, no overlay, state EMPTY."""
        self._bids.n = self._asks.n = 0
        self._tk_bid_price = self._tk_bid_qty = self._tk_ask_price = self._tk_ask_qty = 0
        self.last_update_id = -1
        self.ticker_update_id = -1
        self.state = ST_EMPTY

    cpdef void apply_snapshot(self, object last_update_id, object bids, object asks) except *:
        """Replace the whole book (ladder and overlay); state becomes SYNCING.

        Levels are applied in order like a diff onto an empty book (a repeated price keeps its
        last quantity, quantity 0 leaves no level).
        """
        cdef int64_t lid = _i64(last_update_id)
        if lid < 0:
            raise ValueError(f"last_update_id must not be negative, got {last_update_id}")
        _load_levels(&self._outer.bids, bids)
        _load_levels(&self._outer.asks, asks)
        self._commit_snapshot(lid, &self._outer.bids, &self._outer.asks)

    cpdef int apply_diff(self, object first_id, object final_id, object bids, object asks) except -1:
        """Apply a depthUpdate ``U``..``u``; returns APPLIED, STALE, GAP or NOT_SYNCED."""
        cdef int64_t first = _i64(first_id), final = _i64(final_id)
        if first < 0:
            raise ValueError(f"first_id must not be negative, got {first_id}")
        if final < 0:
            raise ValueError(f"final_id must not be negative, got {final_id}")
        if first > final:
            raise ValueError(f"first_id {first_id} > final_id {final_id}")
        _load_levels(&self._outer.bids, bids)
        _load_levels(&self._outer.asks, asks)
        return self._commit_diff(first, final, &self._outer.bids, &self._outer.asks)

    cpdef int apply_book_ticker(self, object update_id, object bid_price, object bid_qty,
                                object ask_price, object ask_qty) except -1:
        """Store a bookTicker as the top-of-book overlay; APPLIED, STALE or NOT_SYNCED."""
        return self._commit_ticker(_i64(update_id), _i64(bid_price), _i64(bid_qty), _i64(ask_price),
                                   _i64(ask_qty))

    cpdef void apply_snapshot_json(self, object raw) except *:
        """Apply the body of ``GET /api/v3/depth``; ValueError (book unchanged) if malformed."""
        cdef Cur c
        cdef int rc
        if _buffer(raw, &c) == 0:
            rc = _scan_snapshot(&c, &self._outer, self.price_precision, self.qty_precision)
            if rc == SCAN_NOMEM:
                raise MemoryError()
            if rc == SCAN_OK:
                _ws(&c)
                if (c.p == c.end and self._outer.has_u and self._outer.b_kind == V_LEVELS
                        and self._outer.a_kind == V_LEVELS):
                    self._commit_snapshot(self._outer.final_id, &self._outer.bids, &self._outer.asks)
                    return
        last_update_id, bids, asks = _decode_snapshot(raw, self.price_precision, self.qty_precision)
        self.apply_snapshot(last_update_id, bids, asks)

    cpdef int apply_json(self, object raw) except -1:
        """Apply one raw market-stream frame; IGNORED for frames that are not depth/bookTicker.

        ValueError (book unchanged) for malformed JSON, numbers or ids.
        """
        cdef Cur c
        cdef int rc
        cdef Frame* f = &self._outer
        if _buffer(raw, &c):
            return self._slow_json(raw)
        _ws(&c)
        if c.p[0] != 123:
            return self._slow_json(raw)
        rc = _scan_payload(&c, &self._outer, &self._inner, <const unsigned char*><const char*>self._symbol_upper,
                           len(self._symbol_upper), self.price_precision, self.qty_precision, 0)
        if rc == SCAN_NOMEM:
            raise MemoryError()
        if rc:
            return self._slow_json(raw)
        _ws(&c)
        if c.p != c.end:
            return self._slow_json(raw)
        if f.has_stream and f.has_data:
            if not f.data_is_object:
                return self._slow_json(raw)
            f = &self._inner
        if f.event == E_DEPTH:
            if f.sym == S_MISMATCH:
                return RC_IGNORED
            if f.has_U and f.has_u and f.b_kind == V_LEVELS and f.a_kind == V_LEVELS:
                return self._commit_diff(f.first_id, f.final_id, &f.bids, &f.asks)
            return self._slow_json(raw)
        if (f.event == E_ABSENT or f.event == E_TICKER) and f.has_u_key:
            if f.sym == S_MISMATCH:
                return RC_IGNORED
            if (f.has_u and f.b_kind == V_DECIMAL and f.B_kind == V_DECIMAL
                    and f.a_kind == V_DECIMAL and f.A_kind == V_DECIMAL):
                return self._commit_ticker(f.final_id, f.bid_price, f.bid_qty, f.ask_price, f.ask_qty)
            return self._slow_json(raw)
        return RC_IGNORED

    cdef int _slow_json(self, object raw) except -1:
        """The twin's decoder: for frames the scanner would rather not judge alone."""
        frame = _decode_frame(raw, self.symbol, self.price_precision, self.qty_precision)
        if frame is None:
            return RC_IGNORED
        if frame[0] == "depth":
            return self.apply_diff(frame[1], frame[2], frame[3], frame[4])
        return self.apply_book_ticker(frame[1], frame[2], frame[3], frame[4], frame[5])

    cdef int _commit_snapshot(self, int64_t last_update_id, Ladder* bids, Ladder* asks) except -1:
        if last_update_id < 0:
            raise ValueError(f"last_update_id must not be negative, got {last_update_id}")
        _check_levels(bids)
        _check_levels(asks)
        if _reserve(&self._bids, bids.n) or _reserve(&self._asks, asks.n):
            raise MemoryError()
        self.clear()
        _fill(&self._bids, bids, 1)
        _fill(&self._asks, asks, -1)
        self.last_update_id = last_update_id
        self.state = ST_SYNCING
        return 0

    cdef int _commit_diff(self, int64_t first_id, int64_t final_id, Ladder* bids, Ladder* asks) except -1:
        cdef Py_ssize_t i
        if first_id > final_id:
            raise ValueError(f"first_id {first_id} > final_id {final_id}")
        _check_levels(bids)
        _check_levels(asks)
        if self.state == ST_EMPTY:
            return RC_NOT_SYNCED
        if self.state == ST_RESYNC_NEEDED:
            return RC_GAP
        if final_id <= self.last_update_id:
            return RC_STALE
        if first_id > self.last_update_id + 1:
            self.state = ST_RESYNC_NEEDED
            return RC_GAP
        if (_reserve(&self._bids, self._bids.n + bids.n) or _reserve(&self._asks, self._asks.n + asks.n)
                or _reserve(&self._slots, max(bids.n, asks.n))):
            raise MemoryError()
        _apply_side(&self._bids, bids, 1, &self._slots)
        _apply_side(&self._asks, asks, -1, &self._slots)
        self.last_update_id = final_id
        self.state = ST_LIVE
        return RC_APPLIED

    cdef int _commit_ticker(self, int64_t update_id, int64_t bid_price, int64_t bid_qty,
                            int64_t ask_price, int64_t ask_qty) except -1:
        if update_id < 0:
            raise ValueError(f"update_id must not be negative, got {update_id}")
        if bid_price < 0 or bid_qty < 0 or ask_price < 0 or ask_qty < 0:
            raise ValueError("book ticker prices and quantities must not be negative, got "
                             f"{(bid_price, bid_qty, ask_price, ask_qty)}")
        if self.state == ST_EMPTY:
            return RC_NOT_SYNCED
        if update_id <= self.last_update_id or update_id <= self.ticker_update_id:
            return RC_STALE
        self._tk_bid_price = bid_price
        self._tk_bid_qty = bid_qty
        self._tk_ask_price = ask_price
        self._tk_ask_qty = ask_qty
        self.ticker_update_id = update_id
        return RC_APPLIED

    # -- queries --------------------------------------------------------------------------------
    cpdef tuple top(self):
        """Fused ``(bid_price, bid_qty, ask_price, ask_qty)``; 0s for an empty side."""
        cdef int64_t bid_price = 0, bid_qty = 0, ask_price = 0, ask_qty = 0
        if self.ticker_update_id > self.last_update_id:
            return (self._tk_bid_price, self._tk_bid_qty, self._tk_ask_price, self._tk_ask_qty)
        if self._bids.n:
            bid_price = self._bids.levels[self._bids.n - 1].key
            bid_qty = self._bids.levels[self._bids.n - 1].qty
        if self._asks.n:
            ask_price = -self._asks.levels[self._asks.n - 1].key
            ask_qty = self._asks.levels[self._asks.n - 1].qty
        return (bid_price, bid_qty, ask_price, ask_qty)

    @property
    def best_bid_price(self) -> int:
        if self.ticker_update_id > self.last_update_id:
            return self._tk_bid_price
        return self._bids.levels[self._bids.n - 1].key if self._bids.n else 0

    @property
    def best_bid_qty(self) -> int:
        if self.ticker_update_id > self.last_update_id:
            return self._tk_bid_qty
        return self._bids.levels[self._bids.n - 1].qty if self._bids.n else 0

    @property
    def best_ask_price(self) -> int:
        if self.ticker_update_id > self.last_update_id:
            return self._tk_ask_price
        return -self._asks.levels[self._asks.n - 1].key if self._asks.n else 0

    @property
    def best_ask_qty(self) -> int:
        if self.ticker_update_id > self.last_update_id:
            return self._tk_ask_qty
        return self._asks.levels[self._asks.n - 1].qty if self._asks.n else 0

    cpdef bint is_crossed(self) noexcept:
        """Fused best bid >= fused best ask, both sides present: the book cannot be trusted."""
        cdef int64_t bid_price, bid_qty, ask_price, ask_qty
        if self.ticker_update_id > self.last_update_id:
            bid_price, bid_qty = self._tk_bid_price, self._tk_bid_qty
            ask_price, ask_qty = self._tk_ask_price, self._tk_ask_qty
        else:
            if self._bids.n == 0 or self._asks.n == 0:
                return False
            bid_price, bid_qty = self._bids.levels[self._bids.n - 1].key, 1
            ask_price, ask_qty = -self._asks.levels[self._asks.n - 1].key, 1
        return bid_qty > 0 and ask_qty > 0 and bid_price >= ask_price

    cpdef list bids(self, Py_ssize_t n):
        """Up to ``n`` ladder bids, best (highest) first."""
        return _side_list(&self._bids, n, 1)

    cpdef list asks(self, Py_ssize_t n):
        """Up to ``n`` ladder asks, best (lowest) first."""
        return _side_list(&self._asks, n, -1)

    cpdef tuple depth(self, Py_ssize_t n):
        return self.bids(n), self.asks(n)

    cpdef int64_t qty_at(self, bint is_bid, object price) except? -1:
        """Ladder quantity at ``price`` (0 if no level)."""
        cdef Ladder* ladder = &self._bids if is_bid else &self._asks
        cdef int64_t p = _i64(price)
        cdef Py_ssize_t i
        if p <= 0:
            return 0
        i = _lower_bound(ladder, p if is_bid else -p)
        return ladder.levels[i].qty if i < ladder.n and ladder.levels[i].key == (p if is_bid else -p) else 0

    cpdef Py_ssize_t level_count(self, bint is_bid) noexcept:
        return self._bids.n if is_bid else self._asks.n

    def __repr__(self) -> str:
        return (
            f"OrderBook({self.symbol!r}, state={_STATE_NAMES[self.state]}, "
            f"last_update_id={self.last_update_id}, bids={self._bids.n}, "
            f"asks={self._asks.n}, top={self.top()})"
        )


__all__ = [
    "APPLIED",
    "EMPTY",
    "GAP",
    "IGNORED",
    "LIVE",
    "NOT_SYNCED",
    "RESYNC_NEEDED",
    "STALE",
    "SYNCING",
    "OrderBook",
]
