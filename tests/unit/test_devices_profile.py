"""Device profiles: shipped YAMLs load, round-trip, and malformed ones fail clearly."""

import pytest
import yaml

from edgeprune.devices.profile import DeviceProfile, list_profiles, load_profile, save_profile
from edgeprune.errors import UserError


@pytest.fixture(autouse=True)
def _isolated_user_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path / "home"))


def test_shipped_profiles_load():
    assert {"xeon", "rpi3", "gpu", "local"} <= set(list_profiles())
    rpi = load_profile("rpi3")
    assert rpi.identity.threads == 4 and rpi.identity.arch == "aarch64"
    assert rpi.estimated and "ESTIMATED" in rpi.status_line()
    assert rpi.connection.kind == "ssh" and rpi.table_paths()[0].is_file()
    gpu = load_profile("gpu")
    assert gpu.estimated and not gpu.tables and "no latency table" in gpu.status_line()
    local = load_profile("local")
    assert local.identity.arch not in ("", "auto") and local.channel_alignment in (8, 16)


def test_round_trip(tmp_path):
    prof = load_profile("rpi3")
    again = DeviceProfile.from_dict(prof.to_dict(), path=prof.path)
    assert again == prof
    out = save_profile(prof, tmp_path / "copy.yaml")
    assert yaml.safe_load(out.read_text())["identity"]["threads"] == 4


def _write(tmp_path, data):
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


BASE = {"name": "x", "identity": {"arch": "x86_64", "runtime": "ort", "threads": 2}}


@pytest.mark.parametrize(
    "patch, match",
    [
        ({"identity": {"arch": "x86_64", "runtime": "tflite"}}, "unknown runtime"),
        ({"identity": {"arch": "x86_64", "threads": 0}}, "threads and batch"),
        ({"identity": {"arch": "x86_64", "colour": "red"}}, "identity has no field 'colour'"),
        ({"identity": {"runtime": "ort"}}, "p.yaml: identity is missing .* 'arch'"),
        ({"identity": {"arch": "x86_64", "threads": "two"}}, "threads must be an integer"),
        ({"identity": {"arch": "x86_64", "provider": "CPUProvider"}}, "execution provider"),
        ({"identity": {"arch": ""}}, "identity.arch must name"),
        ({"identity": ["x86_64"]}, "identity must be a mapping"),
        ({"channel_alignment": "wide"}, "channel_alignment must be an integer"),
        ({"connection": {"port": 0}}, "not a TCP port"),
        ({"tables": [{"provenance": {"kind": "measured"}}]}, "table is missing .* 'file'"),
        ({"tables": "t.csv"}, "tables must be a list"),
        ({"colour": "red"}, "has no field 'colour'"),
        ({"connection": {"kind": "ssh"}}, "needs a host"),
        ({"tables": [{"file": "t.csv", "provenance": {"kind": "measured"}}]}, "host and date"),
        ({"tables": [{"file": "t.csv", "provenance": {"kind": "estimated"}}]}, "must say how"),
        ({"tables": [{"file": "t.csv", "provenance": {"kind": "guessed"}}]}, "measured or est"),
        ({"calibration": {"m": {"scale": -1}}}, "calibration 'm' is invalid"),
    ],
)
def test_malformed_profiles(tmp_path, patch, match):
    with pytest.raises(UserError, match=match):
        load_profile(_write(tmp_path, {**BASE, **patch}))


def test_missing_keys_and_bad_yaml(tmp_path):
    with pytest.raises(UserError, match="missing the required field 'identity'"):
        load_profile(_write(tmp_path, {"name": "x"}))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_profile(bad)
    with pytest.raises(UserError, match="unknown device 'nope'"):
        load_profile("nope")


def test_user_dir_overrides_package(tmp_path):
    prof = load_profile("rpi3")
    home = tmp_path / "home" / "device_profiles"
    save_profile(prof.with_updates(description="mine"), home / "rpi3.yaml")
    assert load_profile("rpi3").description == "mine"
