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
