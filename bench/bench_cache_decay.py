"""How fast this machine's caches forget a thread's data while the thread waits.

Why it matters here: a requote runs after a gap. Frames arrive ~0.6 ms apart at the median of the
shipped recording (half of them in bursts within a few µs, a quarter over 3 ms apart), and the
engine thread waits on its queue in between. A decision's code and data (~200 KB of code alone,
``bench/ab_instructions.py --cache-sim``) then come back from wherever the caches let them go.

The probe is C, compiled here with the system's C compiler and called through ``ctypes`` (which
releases the GIL: no Python runs while it measures). It walks a working set of N KB in a random
cyclic order (so the prefetchers cannot hide a miss) until it is cached, waits, walks it once more
and times that second walk, for each wait and ``--reps`` times (medians and 90th percentiles):

* ``busy``: a C loop reading the clock (the core stays busy, no system call, no ``pause``
  instruction, which a hypervisor may trap);
* ``sleep``: ``nanosleep`` (the thread blocks, as on a queue).

Nothing of the thread's touches the working set during the wait, so a slower second walk means
something else evicted it: the host, another tenant, interrupts. ``busy_wait(ns)`` is the same
busy loop for other benchmarks (``bench_requote_phases.py --gap cspin:US``).

Run: ``python bench/bench_cache_decay.py [--sizes 24,256] [--gaps 0,5,20,60,150,300,1000,3000]
[--reps 101]`` (KB; µs).
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import os
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

C_SOURCE = r"""
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

void busy_wait(long ns) {
    long end = now_ns() + ns;
    while (now_ns() < end) { __asm__ volatile("" ::: "memory"); }
}

static void wait_for(long ns, int sleeping) {
    if (ns <= 0) return;
    if (!sleeping) { busy_wait(ns); return; }
    struct timespec t = { ns / 1000000000L, ns % 1000000000L };
    nanosleep(&t, NULL);
}

static int by_value(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* Times of the walk after each wait, sorted into out[0..reps); returns 0, or -1 without memory. */
int probe(long size_kb, long wait_ns, int sleeping, int reps, long *out) {
    size_t lines = (size_t)size_kb * 1024 / 64, i;
    char *buf = aligned_alloc(64, lines * 64);
    size_t *order = malloc(lines * sizeof *order);
    if (!buf || !order || lines < 2) { free(buf); free(order); return -1; }
    memset(buf, 0, lines * 64);
    unsigned long seed = 88172645463325252UL;
    for (i = 0; i < lines; i++) order[i] = i;
    for (i = lines - 1; i > 0; i--) {  /* Fisher-Yates with xorshift64 */
        seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
        size_t j = seed % (i + 1), t = order[i];
        order[i] = order[j]; order[j] = t;
    }
    for (i = 0; i < lines; i++) *(size_t *)(buf + order[i] * 64) = order[(i + 1) % lines] * 64;
    volatile size_t sink = 0;
    for (int r = 0; r < reps; r++) {
        size_t at = 0;
        for (int warm = 0; warm < 2; warm++)
            for (i = 0; i < lines; i++) at = *(size_t *)(buf + at);
        wait_for(wait_ns, sleeping);
        long start = now_ns();
        for (i = 0; i < lines; i++) at = *(size_t *)(buf + at);
        out[r] = now_ns() - start;
        sink += at;
    }
    qsort(out, reps, sizeof *out, by_value);
    free(buf);
    free(order);
    return (int)(sink & 0);
}
"""


@functools.cache
def library() -> ctypes.CDLL:
    """The probe compiled into a temporary directory (once per process), removed once loaded."""
    cc = os.environ.get("CC") or (sysconfig.get_config_var("CC") or "").split()[0] or "cc"
    if shutil.which(cc) is None:
        raise SystemExit(f"bench_cache_decay: no C compiler ({cc!r} not found; set CC)")
    where = Path(tempfile.mkdtemp(prefix="botcore-decay-"))
    src, lib = where / "decay.c", where / "decay.so"
    try:
        src.write_text(C_SOURCE)
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
        dll = ctypes.CDLL(str(lib))  # stays mapped after the file is gone
    finally:
        shutil.rmtree(where, ignore_errors=True)
    dll.busy_wait.argtypes = [ctypes.c_long]
    dll.busy_wait.restype = None
    dll.probe.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_long)]
    dll.probe.restype = ctypes.c_int
    return dll


def busy_wait(ns: int) -> None:
    """Wait ``ns`` on a busy core without holding the GIL and without running any Python."""
    library().busy_wait(ns)


def walk_after_wait(size_kb: int, wait_us: int, sleeping: bool, reps: int) -> tuple[float, float]:
    """(p50, p90) in µs of re-reading ``size_kb`` KB after waiting ``wait_us`` µs."""
    out = (ctypes.c_long * reps)()
    if library().probe(size_kb, wait_us * 1000, int(sleeping), reps, out) != 0:
        raise SystemExit(f"bench_cache_decay: cannot allocate {size_kb} KB")
    return out[reps // 2] / 1000, out[(reps * 9) // 10] / 1000


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected non-negative integers")
    return values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=_int_list, default=[24, 256], help="working sets, KB")
    ap.add_argument("--gaps", type=_int_list, default=[0, 5, 20, 60, 150, 300, 1000, 3000], help="waits, µs")
    ap.add_argument("--reps", type=int, default=101)
    a = ap.parse_args()
    if a.reps < 3:
        ap.error("--reps must be at least 3")
    if min(a.sizes) < 1:
        ap.error("--sizes must be at least 1 KB")
    print(f"re-reading a working set after a wait; µs, median and p90 of {a.reps}; ratio: median against no wait")
    print(f"| {'working set':>11s} | {'wait':5s} | {'gap µs':>6s} | {'p50':>8s} | {'p90':>8s} | {'ratio':>6s} |")
    print(f"|{'-' * 12}:|{'-' * 7}|{'-' * 7}:|{'-' * 9}:|{'-' * 9}:|{'-' * 7}:|")
    for size in a.sizes:
        walk_after_wait(size, 0, False, a.reps)  # not shown: the first pass also pays for page faults
        for sleeping in (False, True):
            base = None
            for gap in a.gaps:
                p50, p90 = walk_after_wait(size, gap, sleeping, a.reps)
                base = base or p50
                kind = "sleep" if sleeping else "busy"
                print(f"| {size:>8d} KB | {kind:5s} | {gap:>6d} | {p50:8.1f} | {p90:8.1f} | {p50 / base:6.2f} |")


if __name__ == "__main__":
    main()
