import subprocess
import sys

from edgeprune.cli.main import COMMANDS, main


def test_help_lists_every_command(capsys):
    try:
        main(["--help"])
    except SystemExit as e:
        assert e.code == 0
    out = capsys.readouterr().out
    for name in ["eval", "profile", "prune", "deploy", "bench", "report"]:
        assert name in out and name in COMMANDS


def test_bad_flag_is_one_sentence():
    r = subprocess.run(
        [sys.executable, "-m", "edgeprune", "eval", "--no-such-flag"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "error" in r.stderr


def test_opt_values_are_yaml_and_broken_yaml_is_one_sentence():
    import pytest

    from edgeprune.cli.prune_cmd import parse_options
    from edgeprune.errors import UserError

    assert parse_options(["lam=1e-4", "variant=kq", "milestones=[1, 2]", "an-epochs=3"]) == {
        "lam": "1e-4",
        "variant": "kq",
        "milestones": [1, 2],
        "an_epochs": 3,
    }
    with pytest.raises(UserError, match=r"--opt 'mimic=\[1,2'.* not valid YAML"):
        parse_options(["mimic=[1,2"])
    with pytest.raises(UserError, match="expected KEY=VALUE"):
        parse_options(["lam"])


def test_every_method_checks_its_options_with_one_rule():
    import pytest

    from edgeprune.errors import UserError
    from edgeprune.methods import get_method, list_methods
    from edgeprune.methods.base import check_options, method_class

    cfg = check_options("aap", {"round_epochs": "5", "milestones": [1, 2], "align": "16"})
    assert (cfg.round_epochs, cfg.milestones, cfg.align) == (5, (1, 2), 16)
    assert check_options("paam", {"lam": "1e-4", "freeze_bn_stats": "no"}).lam == 1e-4
    assert get_method("tp-magnitude", p="1").p == 1
    assert get_method("onestep", beta_travel="none").cfg.beta_travel is None  # as messages say
    for name in list_methods():  # a bad key lists the valid ones; l1/uniform take none
        with pytest.raises(UserError, match=f"method '{name}' has no option 'bogus'"):
            check_options(name, {"bogus": 1})
        cls = method_class(name)
        if cls.config_cls is not None:
            assert hasattr(cls.config_cls, "from_dict")
    bad = [
        ("aap", {"round_epochs": "abc"}, "round_epochs must be an integer or none, got 'abc'"),
        ("aap", {"milestones": 91}, "milestones must be a list of integers"),
        ("paam", {"cycles": 2.5}, "cycles must be an integer"),
        ("onestep", {"rate": "half"}, "rate must be a number or none"),
        ("onestep", {"mimic": [1, 2]}, "mimic must be a string"),
        ("tp-magnitude", {"global_pruning": "maybe"}, "global_pruning must be true or false"),
    ]
    for name, opts, match in bad:
        with pytest.raises(UserError, match=match):
            get_method(name, **opts)
    with pytest.raises(UserError, match="unknown method 'nope'; available: aap"):
        get_method("nope")


def test_from_dict_helper_names_missing_and_unknown_keys():
    from dataclasses import dataclass

    import pytest

    from edgeprune.config_io import from_dict
    from edgeprune.errors import UserError

    @dataclass(frozen=True)
    class C:
        name: str
        n: int = 1
        ratio: float | None = None

    assert from_dict(C, {"name": 3, "n": "2", "ratio": "0.5"}, "thing") == C("3", 2, 0.5)
    with pytest.raises(UserError, match="thing is missing the required option 'name'"):
        from_dict(C, {}, "thing")
    with pytest.raises(UserError, match=r"thing has no option 'x' \(valid options: name, n, ratio"):
        from_dict(C, {"name": "a", "x": 1}, "thing")
    with pytest.raises(UserError, match="thing must be a mapping of options, got list"):
        from_dict(C, [1], "thing")
    with pytest.raises(UserError, match="n must be an integer, got True"):
        from_dict(C, {"name": "a", "n": True}, "thing")
