"""edgeprune.search: the one integer and float bisection."""

import math

import pytest

from edgeprune.search import bisect_float, largest_int_that, smallest_int_that


def _counting(pred):
    calls = []

    def f(x):
        calls.append(x)
        return pred(x)

    return f, calls


@pytest.mark.parametrize("boundary", [0, 1, 2, 7, 50, 99, 100])
def test_largest_int_finds_the_monotone_boundary(boundary):
    fits, calls = _counting(lambda n: n <= boundary)
    assert largest_int_that(fits, 0, 100) == boundary
    assert len(calls) <= 2 + math.ceil(math.log2(101))


def test_largest_int_edges():
    assert largest_int_that(lambda n: False, 0, 10) is None  # nothing fits
    assert largest_int_that(lambda n: True, 0, 10) == 10  # everything fits
    assert largest_int_that(lambda n: n <= 3, 3, 3) == 3  # one-element range
    assert largest_int_that(lambda n: n <= 2, 3, 3) is None
    assert largest_int_that(lambda n: True, 5, 4) is None  # empty range
    assert largest_int_that(lambda n: n <= -3, -10, 10) == -3  # negative ranges


@pytest.mark.parametrize("boundary", [0, 1, 2, 7, 50, 99, 100])
def test_smallest_int_finds_the_monotone_boundary(boundary):
    fits, calls = _counting(lambda n: n >= boundary)
    assert smallest_int_that(fits, 0, 100) == boundary
    assert len(calls) <= 2 + math.ceil(math.log2(101))


def test_smallest_int_edges():
    assert smallest_int_that(lambda n: False, 0, 10) is None
    assert smallest_int_that(lambda n: True, 0, 10) == 0
    assert smallest_int_that(lambda n: n >= 3, 3, 3) == 3
    assert smallest_int_that(lambda n: n >= 4, 3, 3) is None
    assert smallest_int_that(lambda n: True, 5, 4) is None


def test_bisect_float_brackets_the_boundary_and_never_probes_the_ends():
    probes = []

    def above(x):
        probes.append(x)
        return x >= 0.3

    lo, hi = bisect_float(above, 0.0, 1.0, 30)
    assert lo < 0.3 <= hi and hi - lo == pytest.approx(2**-30)
    assert len(probes) == 30 and 0.0 not in probes and 1.0 not in probes


def test_bisect_float_geometric_halves_the_log_range():
    lo, hi = bisect_float(lambda x: x >= 2.5, 0.01, 10.0, 60, geometric=True)
    assert lo < 2.5 <= hi and hi / lo == pytest.approx(1.0, abs=1e-12)
    one = bisect_float(lambda x: x >= 2.5, 0.01, 10.0, 1, geometric=True)
    assert one == (math.sqrt(0.01 * 10.0), 10.0)  # the first probe is the geometric mean


def test_bisect_float_edges_nothing_or_everything_above():
    # everything above: the bracket shrinks onto lo; nothing above: onto hi
    assert bisect_float(lambda x: True, 0.0, 1.0, 20)[1] == pytest.approx(0.0, abs=1e-5)
    assert bisect_float(lambda x: False, 0.0, 1.0, 20)[0] == pytest.approx(1.0, abs=1e-5)
    assert bisect_float(lambda x: True, 0.2, 0.8, 0) == (0.2, 0.8)  # no steps: as given
