"""Per-layer latency tables: validation and interpolated look-up.

A table is a pandas DataFrame (saved as CSV next to a device profile) with one row per
measured configuration. Rows are grouped into *families*: everything but the channel
counts (``op, kernel, stride, depthwise, h_in, w_in, batch, runtime, threads, dtype``).
Inside a family a query ``(c_in, c_out)`` is answered by bilinear interpolation between
grid points of the same *alignment class*: a channel count that is a multiple of the
profile's ``channel_alignment`` (e.g. 16 for ONNX Runtime's AVX-512 NCHWc kernels) is
interpolated only between aligned grid points, any other count only between unaligned
ones. That is how the steps of the runtime (blocked layout lost at 15 channels, kept at
16) survive interpolation. A count beyond the measured range of its class is extrapolated
linearly from the two nearest points of that class (a class with fewer than two points is
priced from both classes' points);
a grid corner no row measured comes from a least-squares surface over the family's points
(``_corner``); results are clamped at 0. Only an op family no row measured is a ``UserError``.

Ops (what the runtime executes after its fusions):

``conv``          Conv + folded BN (+ ReLU/ReLU6 fused); ``groups`` > 1 is a grouped conv,
                  its own family (the group count is part of the key, channels vary)
``dwconv``        depthwise Conv (+BN+act), ``c_in == c_out == groups``
``add``           residual add (+ the ReLU after it): the marginal cost, ~0 where fused
``pad_shortcut``  option-A shortcut: strided slice + zero channel pad
``pool``          global average pool (kernel = input size)
``maxpool``       max pool (kernel, stride)
``linear``        fully connected (``h_in`` = the tokens it runs on, 1 after a flatten)
``hardsigmoid``, ``hardswish``, ``silu``, ``sigmoid``, ``gelu``
                  a standalone activation on a ``c x h x w`` map (``c_in == c_out``)
``mul``           squeeze-and-excitation multiply: a map times a per-channel factor
``shuffle``       channel shuffle (reshape, transpose, reshape; kernel = its groups)
``concat``        channel concatenation (kernel = the number of inputs, channels = output)
``layernorm``     LayerNorm over ``c`` channels at each of ``h x w`` positions

Kernel shape: ``kernel`` is the kernel's height; the optional ``kernel_w`` column is its
width where it differs (Inception's 1x7 conv: kernel 1, kernel_w 7; a missing or 0 value is a
square kernel). A non-square conv is its own family, measured with its real kernel shape.

Precision: the optional ``precision`` column says how the op ran: ``fp32`` (the float
graph) or ``int8`` (ONNX Runtime's static QDQ graph of the same op: per-channel int8
weights, uint8 activations, as ``edgeprune.quant.quantize_onnx`` writes it). A table
without the column is all ``fp32``. One ``LatencyTable`` answers for one precision;
``table_precisions`` says which a table holds (a device without int8 rows never offers int8).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from edgeprune.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

REQUIRED_COLUMNS = (
    "op",
    "c_in",
    "c_out",
    "kernel",
    "stride",
    "groups",
    "h_in",
    "w_in",
    "batch",
    "runtime",
    "threads",
    "dtype",
    "latency_ms_median",
    "latency_ms_p90",
    "n_runs",
)
OPTIONAL_COLUMNS = ("method", "chain", "note", "precision", "kernel_w")
PRECISIONS = ("fp32", "int8")  # the precision column's values
ACTIVATION_OPS = ("hardsigmoid", "hardswish", "silu", "sigmoid", "gelu")
ELEMENTWISE_OPS = ACTIVATION_OPS + ("mul", "shuffle", "concat", "layernorm")
KNOWN_OPS = ("conv", "dwconv", "add", "pad_shortcut", "pool", "maxpool", "linear") + ELEMENTWISE_OPS
KNOWN_DTYPES = ("float32", "float16", "int8")
_DIAGONAL_OPS = ("dwconv", "add", "pool", "maxpool") + ELEMENTWISE_OPS  # may price c_in != c_out
_INT_COLUMNS = ("c_in", "c_out", "kernel", "stride", "groups", "h_in", "w_in", "batch", "threads")

FamilyKey = tuple  # (op, kernel, stride, h_in, w_in, groups, kernel_w)


def family_key(
    op: str, kernel: int, stride: int, h_in: int, w_in: int, groups: int = 1, kernel_w: int = 0
) -> FamilyKey:
    """The part of a configuration that must match exactly (channels are interpolated);
    ``groups`` counts only for a grouped ``conv`` (a depthwise conv's equals its channels);
    ``kernel_w`` only where it differs from ``kernel`` (0: square)."""
    g = int(groups) if op == "conv" else 1
    kw = int(kernel_w) if kernel_w and int(kernel_w) != int(kernel) else 0
    return (op, int(kernel), int(stride), int(h_in), int(w_in), max(1, g), kw)


class OpKey(NamedTuple):
    """One op configuration a table prices: :meth:`LatencyTable.lookup`'s arguments."""

    op: str
    c_in: int
    c_out: int
    kernel: int
    stride: int
    h_in: int
    w_in: int
    groups: int = 1
    kernel_w: int = 0

    def family(self) -> FamilyKey:
        """The family it belongs to (see :func:`family_key`)."""
        return family_key(
            self.op, self.kernel, self.stride, self.h_in, self.w_in, self.groups, self.kernel_w
        )

    def where(self) -> str:
        """The family in words, for messages."""
        g = f" groups={self.groups}" if self.op == "conv" and self.groups > 1 else ""
        kw = self.kernel_w
        kk = f"{self.kernel}x{kw}" if kw and kw != self.kernel else f"{self.kernel}"
        return f"{self.op}{g} k={kk} s={self.stride} at {self.h_in}x{self.w_in}"


def kernel_w_column(df: pd.DataFrame) -> list[int]:
    """Each row's kernel width (0: square, also where the column is missing or empty)."""
    if "kernel_w" not in df.columns:
        return [0] * len(df)
    return [int(v) if v == v and v else 0 for v in df["kernel_w"].tolist()]


def validate_table_frame(df: pd.DataFrame, source: str = "latency table") -> pd.DataFrame:
    """Check columns and values of a table; return it with normalised dtypes."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{source} is missing column(s): {', '.join(missing)}")
    if len(df) == 0:
        raise UserError(f"{source} has no rows")
    df = df.copy()
    for col in _INT_COLUMNS + ("n_runs",):
        try:
            vals = df[col].astype(float)
        except (TypeError, ValueError) as exc:
            raise UserError(f"{source}: column {col} must be integers") from exc
        if vals.isna().any() or (vals < 0).any() or (vals != vals.round()).any():
            raise UserError(f"{source}: column {col} must hold non-negative integers")
        df[col] = vals.astype(int)
    for col in ("latency_ms_median", "latency_ms_p90"):
        try:
            vals = df[col].astype(float)
        except (TypeError, ValueError) as exc:
            raise UserError(f"{source}: column {col} must be numbers") from exc
        if vals.isna().any() or not vals.map(math.isfinite).all():
            raise UserError(f"{source}: column {col} has NaN or infinite latencies")
        if (vals < 0).any():
            raise UserError(f"{source}: column {col} has negative latencies")
        df[col] = vals
    bad_ops = sorted(set(df["op"].astype(str)) - set(KNOWN_OPS))
    if bad_ops:
        raise UserError(f"{source}: unknown op(s) {bad_ops}; known: {', '.join(KNOWN_OPS)}")
    from edgeprune.runtimes import runtime_names  # the registry: the one list of runtimes

    bad_rt = sorted(set(df["runtime"].astype(str)) - set(runtime_names()))
    if bad_rt:
        raise UserError(
            f"{source}: unknown runtime(s) {bad_rt}; known: {', '.join(runtime_names())}"
        )
    df["precision"] = _precision_column(df)
    bad_pr = sorted(set(df["precision"]) - set(PRECISIONS))
    if bad_pr:
        raise UserError(f"{source}: unknown precision(s) {bad_pr}; known: {', '.join(PRECISIONS)}")
    bad_dt = sorted(set(df["dtype"].astype(str)) - set(KNOWN_DTYPES))
    if bad_dt:
        raise UserError(f"{source}: unknown dtype(s) {bad_dt}; known: {', '.join(KNOWN_DTYPES)}")
    for col in ("c_in", "c_out", "kernel", "stride", "h_in", "w_in", "batch", "threads"):
        if (df[col] < 1).any():
            raise UserError(f"{source}: column {col} must be >= 1")
    return df


def _precision_column(df: pd.DataFrame):
    """The precision of each row: the column's value, ``fp32`` where absent or empty."""
    if "precision" not in df.columns:
        return ["fp32"] * len(df)
    # an all-empty column reads as float NaN: fill on object dtype, not into float64
    return df["precision"].astype(object).fillna("fp32").astype(str).replace("", "fp32")


def table_precisions(df: pd.DataFrame) -> tuple[str, ...]:
    """The precisions a (validated) table has rows for, in ``PRECISIONS`` order."""
    have = set(_precision_column(df))
    return tuple(p for p in PRECISIONS if p in have)


@dataclass
class _Family:
    values: dict[tuple[int, int], float] = field(default_factory=dict)
    diagonal: bool = True
    cin: dict[bool, list[int]] = field(default_factory=dict)
    cout: dict[bool, list[int]] = field(default_factory=dict)
    fits: dict = field(default_factory=dict)


def _fit_surface(pts):
    """Least-squares bilinear surface through (ci, co, latency) points; False if too few."""
    import numpy as np

    if len(pts) < 4 or len({p[0] for p in pts}) < 2 or len({p[1] for p in pts}) < 2:
        return False
    a = np.array([[1.0, ci, co, ci * co] for ci, co, _ in pts])
    y = np.array([p[2] for p in pts])
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    return tuple(float(c) for c in coef)


class LatencyTable:
    """Interpolating look-up over a validated table (one runtime/threads/batch/dtype), for
    one ``precision`` (its rows only; ``UserError`` when the table has none)."""

    def __init__(
        self,
        df: pd.DataFrame,
        alignment: int = 1,
        source: str = "latency table",
        precision: str = "fp32",
    ):
        df = validate_table_frame(df, source)
        self.raw = df  # every precision's rows
        self.precisions = table_precisions(df)
        if precision not in self.precisions:
            raise UserError(f"{source} has no {precision} measurements")
        df = df[df["precision"] == precision].reset_index(drop=True)
        self.precision = precision
        combos = df[["runtime", "threads", "batch", "dtype"]].drop_duplicates()
        if len(combos) != 1:
            raise UserError(f"{source} mixes runtimes/threads/batch/dtypes; keep one per table")
        self.df = df
        self.source = source
        self.alignment = max(1, int(alignment))
        first = combos.iloc[0]
        self.runtime = str(first["runtime"])
        self.threads = int(first["threads"])
        self.batch = int(first["batch"])
        self.dtype = str(first["dtype"])
        self._families: dict[FamilyKey, _Family] = {}
        self._memo: dict[tuple, float] = {}
        cols = ["op", "kernel", "stride", "h_in", "w_in", "groups", "c_in", "c_out"]
        cols.append("latency_ms_median")
        rows = df[cols].itertuples(index=False, name=None)
        for (op, k, s, h, w, g, ci, co, lat), kw in zip(rows, kernel_w_column(df), strict=True):
            fam = self._families.setdefault(family_key(op, k, s, h, w, g, kw), _Family())
            fam.values[(int(ci), int(co))] = float(lat)
            if ci != co:
                fam.diagonal = False
        for fam in self._families.values():
            for axis, store in ((0, fam.cin), (1, fam.cout)):
                vals = sorted({key[axis] for key in fam.values})
                for cls in (True, False):
                    store[cls] = [v for v in vals if self.aligned(v) == cls]

    def aligned(self, c: int) -> bool:
        """Whether a channel count is in the aligned class of this table."""
        return c % self.alignment == 0

    def families(self) -> list[FamilyKey]:
        """The family keys this table covers."""
        return sorted(self._families)

    def has_family(self, op: str, *family: int) -> bool:
        """Whether a row measured the family ``(op, kernel, stride, h_in, w_in, groups=1,
        kernel_w=0)`` (:func:`family_key`'s arguments)."""
        return family_key(op, *family) in self._families

    def lookup(self, op: str, *fields: int) -> float:
        """Latency in ms of one op, :class:`OpKey`'s fields in order (``op, c_in, c_out, kernel,
        stride, h_in, w_in, groups=1, kernel_w=0``), interpolated; ``UserError`` when outside
        the table."""
        memo_key = (op,) + fields  # the hot path: a memo hit builds no OpKey
        hit = self._memo.get(memo_key)
        if hit is not None:
            return hit
        key = OpKey(*memo_key)
        fam = self._families.get(key.family())
        if fam is None:
            raise UserError(
                f"{self.source} has no entry for {key.where()}; "
                "profile this model with 'edgeprune profile --model ...' first"
            )
        if fam.diagonal and key.c_in != key.c_out and key.op not in _DIAGONAL_OPS:
            raise UserError(f"{self.source}: {key.op} rows have c_in == c_out only")
        brackets = self._brackets(fam, key)
        if fam.diagonal:
            ((lo, hi, t, _),) = brackets
            val = (1 - t) * fam.values[(lo, lo)] + t * fam.values[(hi, hi)]
        else:
            (ilo, ihi, ti, _), (olo, ohi, to, _) = brackets
            v00 = self._corner(fam, ilo, olo)
            v01 = self._corner(fam, ilo, ohi)
            v10 = self._corner(fam, ihi, olo)
            v11 = self._corner(fam, ihi, ohi)
            val = (1 - ti) * ((1 - to) * v00 + to * v01) + ti * ((1 - to) * v10 + to * v11)
        val = max(0.0, val)
        self._memo[memo_key] = val
        return val

    def inexact(self, op: str, *fields: int) -> str | None:
        """Why :meth:`lookup` of these arguments is not inside its measured rows (channels
        extrapolated beyond them or taken from the other alignment class, or no row of its
        family at all); None when it is (a grid corner filled by the family's fitted surface
        counts as inside)."""
        key = OpKey(op, *fields)
        fam = self._families.get(key.family())
        if fam is None:
            return "no row of its op family"
        return "; ".join(b[3] for b in self._brackets(fam, key) if b[3]) or None

    def _brackets(self, fam: _Family, key: OpKey) -> list[tuple[int, int, float, str | None]]:
        """:meth:`_bracket` of each channel axis of ``key``: one (channels) in a diagonal
        family, else c_in and c_out."""
        if fam.diagonal:
            return [self._bracket(fam.cin, key.c_in, "channels")]
        return [
            self._bracket(fam.cin, key.c_in, "c_in"),
            self._bracket(fam.cout, key.c_out, "c_out"),
        ]

    def _corner(self, fam: _Family, ci: int, co: int) -> float:
        """A grid value; a missing one (grids of several layers overlap) comes from a
        least-squares surface ``p0 + p1*ci + p2*co + p3*ci*co`` over the family's points of
        the same alignment classes, else over all its points, else ``p0 + p3*ci*co``, else
        the nearest point scaled by ``ci*co`` (a family of one point)."""
        v = fam.values.get((ci, co))
        if v is not None:
            return v
        cls = (self.aligned(ci), self.aligned(co))
        coef = fam.fits.get(cls)
        if coef is None:
            same = [
                (a, b, lat)
                for (a, b), lat in fam.values.items()
                if (self.aligned(a), self.aligned(b)) == cls
            ]
            every = [(a, b, lat) for (a, b), lat in fam.values.items()]
            coef = _fit_surface(same) or _fit_surface(every) or _fit_product(same or every)
            fam.fits[cls] = coef
        if coef is False:  # one point: scale it by the MACs ratio
            (a, b), lat = min(
                fam.values.items(), key=lambda kv: abs(kv[0][0] - ci) + abs(kv[0][1] - co)
            )
            return lat * ci * co / (a * b)
        return max(0.0, coef[0] + coef[1] * ci + coef[2] * co + coef[3] * ci * co)

    def _bracket(
        self, store: dict[bool, list[int]], c: int, what: str
    ) -> tuple[int, int, float, str | None]:
        """(lo, hi, t, why) with value ``(1 - t) * v[lo] + t * v[hi]``: interpolation between
        the grid points of ``c``'s alignment class (both classes' when it has fewer than two: a
        grouped conv's unaligned widths, one point, 4 of 64, priced 56 as if it were 4); beyond
        the measured range, linear extrapolation from the two nearest points (the value of
        the only point when there is one); callers clamp the result at 0. ``why`` says (with
        ``what``, the axis) why that is not inside the measured rows; None when it is."""
        own = store[self.aligned(c)]
        grid = own if len(own) >= 2 else sorted(set(own) | set(store[not self.aligned(c)]))
        i = bisect.bisect_left(grid, c)
        if i < len(grid) and grid[i] == c:
            return c, c, 0.0, None  # measured at this very width (3 channels, 1000 classes)
        why = None
        if len(own) < 2:
            why = f"{what} {c}: {len(own)} measured row(s) of its alignment class"
        elif not grid[0] <= c <= grid[-1]:
            why = f"{what} {c} extrapolated beyond the measured {grid[0]}..{grid[-1]}"
        if len(grid) == 1:
            return grid[0], grid[0], 0.0, why
        j = min(max(i, 1), len(grid) - 1)  # the bracket, or the nearest two beyond the ends
        lo, hi = grid[j - 1], grid[j]
        return lo, hi, (c - lo) / (hi - lo), why


def _fit_product(pts):
    """Least-squares ``p0 + p3*ci*co`` (as a surface's coefficients); False if too few."""
    import numpy as np

    if len({p[0] * p[1] for p in pts}) < 2:
        return False
    a = np.array([[1.0, ci * co] for ci, co, _ in pts])
    coef, *_ = np.linalg.lstsq(a, np.array([p[2] for p in pts]), rcond=None)
    return (float(coef[0]), 0.0, 0.0, float(coef[1]))


def load_table_csv(path: str, alignment: int = 1, precision: str = "fp32") -> LatencyTable:
    """Read and validate a table CSV; the look-up answers for ``precision``."""
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise UserError(f"latency table not found: {path}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"latency table {path} is not a readable CSV ({exc})") from None
    return LatencyTable(df, alignment, f"latency table {path}", precision)
