"""The pattern features of :mod:`attnpatterns.classifier.features` as one compiled loop per map (numba).

:func:`attnpatterns.classifier.features.map_features_torch` states every feature as a few tensor operations; run
on the (heads, n, n) maps of one example, its ~150 small operations cost more in dispatch and temporaries than in
arithmetic, and made the features the largest part of ``attn classify`` after the model's forward pass. This
module computes the same numbers in a handful of passes over each map, with no temporaries of the map's size
beyond the row-normalised maps, and is what :func:`~attnpatterns.classifier.features.map_features` runs.

Equal to the tensor version up to float32 rounding (``tests/test_features.py`` checks every feature on random,
structured and annotated maps). Where values tie exactly (the two largest columns, a row's largest entry, the best
split or line) this one takes the first; torch's ``topk`` breaks ties between columns in no stated order, so on maps
with exactly equal columns the two versions may remove different ones.
Compiled on first use and cached beside the module (``NUMBA_CACHE_DIR`` elsewhere when that is read-only).
"""

from __future__ import annotations

import math
import threading

import numba
import numpy as np

NF = 43  # features per map: features.NUM_FEATURES (tests/test_features.py holds the two equal)
EPS = 1e-20  # the row-sum floor of features.map_features_torch
# sums may be reassociated (vectorised) and divisions contracted: float rounding only, no change to infinities or NaN
_FAST = {"reassoc", "contract", "arcp"}


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _scale_rows(M: np.ndarray, inv: np.ndarray, R: np.ndarray, cols: np.ndarray, g: np.ndarray, S: np.ndarray) -> None:
    """R = M with row i times inv[i] (float32; R may be M), in one pass that also sums what the features need:
    cols[j] the column sums of R, g[s] row s up to column s plus column s above row s (the prefix sums of
    features._Splits), and features._sums into S (S[0..6] the diagonals -3..+3, S[7] sum |i-j| R, S[8] the mass
    beyond 3, S[9] the total)."""
    n = M.shape[0]
    for j in range(n):
        cols[j] = 0.0
        g[j] = 0.0
    dist = np.float64(0.0)
    for i in range(n):  # short loops over one row each (it stays in L1), simpler to compile than one fused loop
        f = inv[i]
        src = M[i]
        row = R[i]
        for j in range(n):
            row[j] = np.float32(src[j] * f)
        for j in range(n):
            cols[j] += row[j]
        low = np.float64(0.0)  # float64 accumulators (sums of float32 cells)
        dl = np.float64(0.0)
        for j in range(i + 1):
            low += row[j]
            dl += (i - j) * row[j]
        du = np.float64(0.0)
        for j in range(i + 1, n):
            g[j] += row[j]
            du += (j - i) * row[j]
        g[i] += low
        dist += dl + du
    total = 0.0
    for j in range(n):
        total += cols[j]
    near = 0.0
    for k in range(-3, 4):
        d = 0.0
        for i in range(max(0, -k), min(n, n - k)):
            d += R[i, i + k]
        S[k + 3] = d
        near += d
    S[7] = dist
    S[8] = total - near
    S[9] = total


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _splits(g: np.ndarray, r_sums: np.ndarray, col_sums: np.ndarray, within: np.ndarray, cross: np.ndarray) -> None:
    """Block masses of a row-normalised map for every split s (features._Splits) from its prefix sums g (see
    _scale_rows), row sums and column sums: within[s], cross[s]."""
    n = g.shape[0]
    total = 0.0
    for i in range(n):
        total += r_sums[i]
    within[0] = total  # s = 0: one block holds everything
    cross[0] = 0.0
    diag = 0.0
    rows = 0.0
    cols = 0.0
    for s in range(n):
        diag += g[s]
        rows += r_sums[s]
        cols += col_sums[s]
        w = diag + (total - rows - cols + diag)
        within[s + 1] = w
        cross[s + 1] = total - w


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _spread(R: np.ndarray, within: np.ndarray, cross: np.ndarray, S: np.ndarray, out: np.ndarray, at: int) -> None:
    """features._spread_features of one map into out[at:at + 5]: dist_mean, far_mass, leak_min, leak_ratio,
    block_far."""
    n = R.shape[0]
    out[at] = S[7] / (n * n)
    out[at + 1] = S[8] / n
    if n < 6:  # no split 3 <= s <= n - 3
        h = n // 2
        far = 0.0
        for i in range(n):
            for j in range(n):
                d = i - j if i >= j else j - i
                if (i < h) == (j < h) and d > 2:
                    far += R[i, j]
        out[at + 2] = 0.0
        out[at + 3] = 1.0
        out[at + 4] = far / n
        return
    leak = math.inf
    ratio = math.inf
    w = 3
    for s in range(3, n - 2):
        c = cross[s] / n
        if c < leak:
            leak = c
            w = s
        flat = max(2.0 * s * (n - s) / n, 1e-9)
        r = cross[s] / flat
        if r < ratio:
            ratio = r
    t = w  # the six band entries that cross split t
    crossing = R[t - 1, t] + R[t - 1, t + 1] + R[t - 2, t] + R[t, t - 1] + R[t + 1, t - 1] + R[t, t - 2]
    band = S[1] + S[2] + S[3] + S[4] + S[5]
    out[at + 2] = leak
    out[at + 3] = ratio
    out[at + 4] = (within[w] - band + crossing) / n


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _one(A: np.ndarray, logA: np.ndarray, out: np.ndarray) -> None:
    """All NF features of one (n, n) map into out (the order of features.FEATURE_NAMES)."""
    n = A.shape[0]
    logn = math.log(n)
    R = np.empty((n, n), dtype=np.float32)
    rows = np.empty(n)
    inv = np.empty(n)
    r_sums = np.empty(n)
    c = np.empty(n)
    g = np.empty(n)
    S = np.empty(10)
    ent = np.empty(n)
    a_max = np.empty(n)
    am = np.empty(n, dtype=np.int64)
    mx = 0.0
    for i in range(n):
        s = 0.0
        sal = 0.0  # sum of A log A over the row: the row entropy of R = A / d follows without a log per cell
        best = A[i, 0]
        bj = 0
        for j in range(n):
            v = A[i, j]
            s += v
            sal += v * logA[i, j]
            if v > best:
                best = v
                bj = j
        rows[i] = s
        a_max[i] = best
        am[i] = bj
        if best > mx:
            mx = best
        r_sums[i] = 1.0 if s > EPS else 0.0
        d = max(s, EPS)
        inv[i] = 1.0 / d
        ent[i] = (s * inv[i] * math.log(d) - inv[i] * sal) / logn
    _scale_rows(A, inv, R, c, g, S)  # c: the column sums, made the key shares below
    col_sums = c.copy()
    for j in range(n):
        c[j] /= n
    # the three largest key shares, largest first (ties: the lower index)
    t0 = -1
    t1 = -1
    t2 = -1
    for j in range(n):
        v = c[j]
        if t0 < 0 or v > c[t0]:
            t2, t1, t0 = t1, t0, j
        elif t1 < 0 or v > c[t1]:
            t2, t1 = t1, j
        elif t2 < 0 or v > c[t2]:
            t2 = j
    cs0 = c[t0]
    cs1 = c[t1] if t1 >= 0 else 0.0
    cs2 = c[t2] if t2 >= 0 else 0.0
    col_entropy = 0.0
    for j in range(n):
        col_entropy -= c[j] * math.log(max(c[j], 1e-30))
    col_entropy /= logn
    band = (S[2] + S[3] + S[4]) / n
    ent_mean = 0.0
    for i in range(n):
        ent_mean += ent[i]
    ent_mean /= n
    ent_var = 0.0
    for i in range(n):
        ent_var += (ent[i] - ent_mean) ** 2
    ent_std = math.sqrt(ent_var / n)
    # the map without its two largest columns (t0, t1): band, mass, rows renormalised
    lost = 0.0
    for t in (t0, t1):
        if t >= 0:
            for i in range(t - 1, t + 2):
                if 0 <= i < n:
                    lost += R[i, t]
    band_off = band - lost / n
    r_total = 0.0
    for i in range(n):
        r_total += r_sums[i]
    mass_off = (r_total - n * (cs0 + cs1)) / n
    within = np.empty(n + 1)
    cross = np.empty(n + 1)
    _splits(g, r_sums, col_sums, within, cross)
    gain_best = 0.0
    split = 0.0
    if n >= 4:
        gb = -math.inf
        gw = 2
        for s in range(2, n - 1):
            flat = (s * s + (n - s) * (n - s)) / n
            gs = (within[s] - flat) / n
            if gs > gb:
                gb = gs
                gw = s
        if gb > 1e-5:
            gain_best = gb
            split = gw / n
    wide = (S[0] + S[1] + S[5] + S[6]) / n
    mean_row = 0.0
    max_row = 0.0
    for i in range(n):
        mean_row += rows[i]
        if rows[i] > max_row:
            max_row = rows[i]
    mean_row /= n
    log_scale = math.log(max(mean_row, EPS))
    peak = mx / max(max_row, EPS)
    rmax = 0.0
    per_key = np.zeros(n)
    near1 = 0.0
    near0 = 0.0
    for i in range(n):
        rmax += a_max[i] / max(rows[i], EPS)
        per_key[am[i]] += 1.0
        d = am[i] - i
        if -1 <= d <= 1:
            near1 += 1.0
        if d == 0:
            near0 += 1.0
    rmax /= n
    mode = 0.0
    for j in range(n):
        if per_key[j] > mode:
            mode = per_key[j]
    inner = 0.0
    if n > 2:
        inner = c[1]
        for j in range(2, n - 1):
            if c[j] > inner:
                inner = c[j]
    # Rn: R without columns t0, t1, rows renormalised; row maxima of that R without them
    Rn = np.empty((n, n), dtype=np.float32)
    n_sums = np.empty(n)
    n_cols = np.empty(n)
    rm_max = 0.0
    for i in range(n):
        row = Rn[i]
        for j in range(n):
            row[j] = R[i, j]
        row[t0] = 0.0
        if t1 >= 0:
            row[t1] = 0.0
        s = 0.0
        best = np.float32(0.0)
        for j in range(n):
            s += row[j]
            best = max(best, row[j])
        rm_max += best
        n_sums[i] = 1.0 if s > EPS else 0.0
        inv[i] = 1.0 / max(s, EPS)
    Sn = np.empty(10)
    _scale_rows(Rn, inv, Rn, n_cols, g, Sn)
    rm_max /= n
    out[0] = logn
    out[1] = cs0
    out[2] = cs0 + cs1
    out[3] = cs0 + cs1 + cs2
    out[4] = c[0]
    out[5] = c[n - 1]
    out[6] = col_entropy
    for k in range(5):
        out[7 + k] = S[1 + k] / n
    out[12] = band
    out[13] = ent_mean
    out[14] = ent_std
    out[15] = rmax
    out[16] = band_off
    out[17] = mass_off
    out[18] = gain_best
    out[19] = split
    out[20] = wide
    out[21] = log_scale
    out[22] = peak
    _spread(R, within, cross, S, out, 23)
    _splits(g, n_sums, n_cols, within, cross)
    _spread(Rn, within, cross, Sn, out, 28)
    out[33] = mode / n
    out[34] = near1 / n
    out[35] = near0 / n
    out[36] = inner
    out[37] = rm_max
    # the guidelines' anchors on the map's own colour scale: bright = at least a quarter of the maximum
    thr = np.float32(0.25) * np.float32(max(mx, 1e-30))
    per_col = np.zeros(n)
    for i in range(n):
        for j in range(n):
            per_col[j] += 1.0 if A[i, j] >= thr else 0.0
    share_first = 0.0
    share_max = 0.0
    bright_cols = np.zeros(n, dtype=np.bool_)
    nb = 0.0
    on_cols = 0.0
    for j in range(n):
        own = 1.0 if A[j, j] >= thr else 0.0
        sh = (per_col[j] - own) / max(n - 1, 1)
        if j == 0:
            share_first = sh
            share_max = sh
        elif sh > share_max:
            share_max = sh
        bright_cols[j] = sh >= 0.5
        nb += per_col[j]
        if bright_cols[j]:
            on_cols += per_col[j]
    dshare = -1.0
    on_line = 0.0
    for k in (-1, 0, 1):
        m = n - (k if k >= 0 else -k)
        hits = 0.0
        off = 0.0
        for t in range(m):
            i = t if k >= 0 else t - k
            j = t + k if k >= 0 else t
            if A[i, j] >= thr:
                hits += 1.0
                if not bright_cols[j]:
                    off += 1.0
        line = hits / m if m > 0 else 0.0
        if line > dshare:
            dshare = line
            on_line = off
    out[38] = share_first
    out[39] = share_max
    out[40] = dshare
    out[41] = (on_cols + on_line) / max(nb, 1.0) if nb > 0 else 0.0
    out[42] = nb / (n * n)


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _all(maps: np.ndarray, logs: np.ndarray, out: np.ndarray) -> None:
    for k in range(maps.shape[0]):
        _one(maps[k], logs[k], out[k])


@numba.njit(cache=True, nogil=True)
def _resize_all(maps: np.ndarray, size: int, scale: int, out: np.ndarray) -> None:
    """(K, n, n) -> out (K, S, S): torch's ``interpolate`` of model.prepare, "area" (block means, the blocks of
    adaptive average pooling) when n > S, "nearest-exact" when n < S, a copy when n = S; then scale 1 divides each
    map by its maximum and scale 2 multiplies it to a total of S (0: as it is)."""
    K, n, S = maps.shape[0], maps.shape[1], size
    lo = np.empty(S, dtype=np.int64)
    hi = np.empty(S, dtype=np.int64)
    for o in range(S):
        if n > S:
            lo[o] = (o * n) // S
            hi[o] = -((-(o + 1) * n) // S)
        else:
            lo[o] = min(int(math.floor((o + 0.5) * (n / S))), n - 1) if n < S else o
            hi[o] = lo[o] + 1
    rows = np.empty((S, n), dtype=np.float32)
    for k in range(K):
        A = maps[k]
        for a in range(S):  # the sum of output row a's block of rows
            for j in range(n):
                rows[a, j] = 0.0
            for i in range(lo[a], hi[a]):
                for j in range(n):
                    rows[a, j] += A[i, j]
        o = out[k]
        for a in range(S):
            h = hi[a] - lo[a]
            for b in range(S):
                s = np.float32(0.0)
                for j in range(lo[b], hi[b]):
                    s += rows[a, j]
                o[a, b] = s / np.float32(h * (hi[b] - lo[b]))
        if scale == 1:
            m = np.float32(0.0)
            for a in range(S):
                for b in range(S):
                    m = max(m, o[a, b])
            m = max(m, np.float32(1e-12))
            for a in range(S):
                for b in range(S):
                    o[a, b] = o[a, b] / m
        elif scale == 2:
            t = np.float32(0.0)
            for a in range(S):
                for b in range(S):
                    t += o[a, b]
            f = np.float32(S) / max(t, np.float32(1e-12))
            for a in range(S):
                for b in range(S):
                    o[a, b] = o[a, b] * f


_SCALES = {"none": 0, "max": 1, "mass": 2}


def resize_maps(maps: np.ndarray, size: int, scale: str) -> np.ndarray:
    """(K, n, n) maps -> (K, S, S) float32, as model.prepare's mode "resize" with the given scale (none, max, mass);
    equal to its torch version up to float32 rounding (tests/test_classifier.py)."""
    a = np.ascontiguousarray(maps, dtype=np.float32)
    out = np.empty((a.shape[0], size, size), dtype=np.float32)
    _resize_all(a, size, _SCALES[scale], out)
    return out


_scratch = threading.local()
_KEEP_AT_MOST = 8 << 20  # float32 entries: 32 MB


def _log_buffer(size: int) -> np.ndarray:
    """A float32 scratch array of at least ``size`` entries, kept per thread and reused between calls: a fresh
    array of a stack's size would be new pages from the system on every call, and faulting them in cost about as
    much as the log itself (each call's stack is hundreds of kB). Stacks past 32 MB get an array of their own,
    not kept."""
    if size > _KEEP_AT_MOST:
        return np.empty(size, dtype=np.float32)
    buf = getattr(_scratch, "logs", None)
    if buf is None or buf.size < size:
        buf = _scratch.logs = np.empty(max(size, 1 << 16), dtype=np.float32)
    return buf[:size]


def fused_features(maps: np.ndarray) -> np.ndarray:
    """(K, n, n) non-negative float32 maps of one length -> (K, NF) float32 features."""
    a = np.ascontiguousarray(maps, dtype=np.float32)
    out = np.empty((a.shape[0], NF), dtype=np.float64)
    logs = _log_buffer(a.size).reshape(a.shape)
    # numpy's vectorised log, in place: log(0) taken as log(1e-30), times 0
    np.log(np.maximum(a, np.float32(1e-30), out=logs), out=logs)
    _all(a, logs, out)
    return out.astype(np.float32)
