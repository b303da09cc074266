"""Host records of `device setup` and the --remote-python default they give."""

from __future__ import annotations

import pytest

from edgeprune.devices.hosts import (
    HostRecord,
    list_records,
    load_record,
    provisioned_python,
    remote_python,
    save_record,
)
from edgeprune.errors import UserError


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/config of the developer's
    return tmp_path


def _record(host="pi@10.0.0.7:22", python="/home/pi/.edgeprune/venv/bin/python"):
    return HostRecord(host, python, "/home/pi/.edgeprune/venv", "ort", ("numpy",), {"cores": 4})


def test_record_round_trip(home):
    path = save_record(_record())
    assert path.parent == home / "devices"
    assert load_record("pi@10.0.0.7:22") == _record()
    assert [r.host for r in list_records()] == ["pi@10.0.0.7:22"]


def test_remote_python_precedence(home):
    save_record(_record())
    assert provisioned_python("pi@10.0.0.7") == "/home/pi/.edgeprune/venv/bin/python"
    assert remote_python("/opt/py", "pi@10.0.0.7", "python3") == "/opt/py"  # the flag wins
    assert remote_python(None, "pi@10.0.0.7", "python3") == "/home/pi/.edgeprune/venv/bin/python"
    assert remote_python(None, "pi@10.0.0.8", "/usr/bin/python3.9") == "/usr/bin/python3.9"
    assert remote_python(None, None, "") == "python3"
    assert provisioned_python("local") is None


def test_a_broken_record_is_one_sentence(home):
    save_record(_record())
    (home / "devices" / "pi@10.0.0.7_22.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="not a JSON object"):
        load_record("pi@10.0.0.7:22")
    assert list_records() == []  # listing skips it
