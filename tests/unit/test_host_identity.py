"""Which machine a number belongs to: the verifying host against the profile's identity."""

from __future__ import annotations

import yaml
from edgeprune.deploy_agent.edgeprune_agent import device_identity

from edgeprune.devices.identity import host_note, identity_differences
from edgeprune.devices.profile import (
    DeviceProfile,
    Identity,
    Provenance,
    TableRef,
    load_profile,
)

AVX512 = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni")
TABLE = Identity(arch="x86_64", cpu="AMD EPYC", cores=2, isa=AVX512)
MEASURED = (TableRef("t.csv", Provenance("measured")),)


def _profile(identity=TABLE):
    return DeviceProfile(name="xeon", identity=identity, tables=MEASURED)


def _host(**kw):
    base = {"machine": "x86_64", "cpu": "AMD EPYC", "cores": 2, "isa": list(AVX512)}
    return {**base, **kw}


def test_same_machine_has_no_note():
    assert identity_differences(TABLE, _host()) == []
    assert host_note(_profile(), _host(), "resnet56") is None


def test_an_avx2_host_under_an_avx512_table_is_named_in_one_sentence():
    host = _host(isa=["avx", "avx2", "fma", "f16c"])
    assert identity_differences(TABLE, host) == ["lacks avx512f avx512bw avx512_vnni"]
    note = host_note(_profile(), host, "resnet56")
    assert note.count(".") == 0 and "device 'xeon'" in note
    assert "edgeprune profile --device local --model resnet56" in note
    estimated = DeviceProfile(name="rpi3", identity=TABLE)  # no measured table: nothing to say
    assert host_note(estimated, host, "resnet56") is None


def test_other_cpu_and_cores_differ_and_unrecorded_fields_are_not_compared():
    diff = identity_differences(TABLE, _host(cpu="Intel Xeon", cores=8))
    assert diff == ["CPU 'Intel Xeon' vs 'AMD EPYC'", "8 cores vs 2"]
    old = Identity(arch="x86_64", cpu="AMD EPYC")  # a profile written before isa/cores
    assert identity_differences(old, _host(isa=[], cores=64)) == []
    assert host_note(None, _host(), "m") is None and host_note(_profile(), {}, "m") is None


def test_identity_records_isa_and_round_trips_through_yaml(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path / "home"))
    local = load_profile("local")  # detected on this host
    assert list(local.identity.isa) == device_identity()["isa"]
    doc = yaml.safe_load(yaml.safe_dump(local.identity.to_dict()))
    assert Identity.from_dict(doc) == local.identity
    assert "avx512f" in load_profile("xeon").identity.isa  # the shipped table's VM


def test_a_remote_identity_from_device_setup_fills_the_profile():
    from edgeprune.devices.identity import with_agent_identity

    pi = {"machine": "aarch64", "cpu": "Cortex-A53", "cores": 4, "isa": ["neon", "asimd"]}
    ident = with_agent_identity(Identity(arch="auto", threads=4), pi)
    assert (ident.arch, ident.cores, ident.isa, ident.threads) == (
        "aarch64",
        4,
        ("neon", "asimd"),
        4,
    )
    assert with_agent_identity(TABLE, None) == TABLE
