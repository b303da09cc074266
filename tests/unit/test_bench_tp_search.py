"""The tp-magnitude peer's ratio search (bisection and bracketing) on synthetic curves."""

from edgeprune.methods.tp_magnitude import _bisect, _bracket


def test_bisect_finds_smallest_fitting_ratio():
    calls = []

    def fits(r):
        calls.append(r)
        return r >= 0.37

    r = _bisect(fits, 12, 0.0, 0.9)
    assert 0.37 <= r < 0.371 and len(calls) == 12


def test_bracket_steps_out_from_the_prediction():
    lo, hi = _bracket(lambda r: r >= 0.5, 0.42, 5, 0.9)
    assert lo < 0.5 <= hi
    lo, hi = _bracket(lambda r: r >= 0.3, 0.42, 5, 0.9)
    assert lo < 0.3 <= hi
    lo, hi = _bracket(lambda r: False, 0.8, 5, 0.9)  # never fits: stops at the top
    assert hi == 0.9
