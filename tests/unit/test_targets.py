"""Host specs, ssh config resolution, quoting and LocalTarget."""

from __future__ import annotations

import getpass
import os
import shlex

import pytest

from edgeprune.errors import UserError
from edgeprune.targets import LocalTarget, make_target, parse_host, quote_argv, resolve_host
from edgeprune.targets.base import RemoteCommandError, RunResult, check


@pytest.mark.parametrize(
    "spec,want",
    [
        ("pi@raspberrypi:2222", ("pi", "raspberrypi", 2222)),
        ("pi@10.0.0.7", ("pi", "10.0.0.7", None)),
        ("jetson", (None, "jetson", None)),
        ("jetson:22", (None, "jetson", 22)),
        ("me@[fe80::1]:2200", ("me", "fe80::1", 2200)),
        ("[::1]", (None, "::1", None)),
    ],
)
def test_parse_host(spec, want):
    assert parse_host(spec) == want


@pytest.mark.parametrize("bad", ["", "a@b@c", "host:port", "pi@host:0", "pi@host:70000", "a b"])
def test_parse_host_rejects(bad):
    with pytest.raises(UserError):
        parse_host(bad)


def test_resolve_alias_from_ssh_config(tmp_path):
    key = tmp_path / "id_pi"
    key.write_text("not used")
    cfg = tmp_path / "config"
    cfg.write_text(
        "Host pi3\n  HostName 192.168.1.50\n  User pi\n  Port 2222\n"
        f"  IdentityFile {key}\n  ProxyJump bastion\n"
        "Host bastion\n  HostName 10.0.0.1\n  User jump\n"
    )
    spec = resolve_host("pi3", str(cfg))
    assert (spec.hostname, spec.user, spec.port, spec.alias) == ("192.168.1.50", "pi", 2222, "pi3")
    assert spec.identity_files == (str(key),) and spec.proxy_jump == "bastion"
    # values written in --host win over the file; --key goes first
    other = tmp_path / "other"
    other.write_text("x")
    spec = resolve_host("root@pi3:22", str(cfg), key=str(other))
    assert (spec.user, spec.port) == ("root", 22)
    assert spec.identity_files[0] == str(other)
    assert str(spec) == "root@192.168.1.50:22"
    assert "not used" not in repr(spec)  # paths only, never key material


def test_resolve_plain_host_without_config(tmp_path):
    spec = resolve_host("box", None)
    assert (spec.hostname, spec.port, spec.user) == ("box", 22, getpass.getuser())
    with pytest.raises(UserError, match="does not exist"):
        resolve_host("box", str(tmp_path / "missing"))
    with pytest.raises(UserError, match="key file"):
        resolve_host("box", None, key=str(tmp_path / "nokey"))


def test_quote_argv_roundtrip():
    argv = ["python3", "/tmp/a b/agent.py", "--x", "$(rm -rf ~)", "it's", ""]
    assert shlex.split(quote_argv(argv)) == argv
    with pytest.raises(TypeError):
        quote_argv("echo hi")


def test_check_raises_one_sentence():
    with pytest.raises(RemoteCommandError, match="exit status 3: .*boom"):
        check(RunResult(3, "", "trace\nboom\n"), "thing", "dev")
    assert check(RunResult(0, "ok", ""), "thing", "dev").stdout == "ok"


def test_local_target_interface(tmp_path):
    src = tmp_path / "f.txt"
    src.write_text("hello")
    with make_target(None) as t:
        assert isinstance(t, LocalTarget)
        d = t.mkdtemp()
        t.put(str(src), os.path.join(d, "g.txt"))
        t.get(os.path.join(d, "g.txt"), str(tmp_path / "back.txt"))
        assert (tmp_path / "back.txt").read_text() == "hello"
        res = t.run(["sh", "-c", "echo $0; exit 4", "a b"])
        assert (res.rc, res.stdout.strip()) == (4, "a b")
        assert t.run(["definitely-not-a-command-xyz"]).rc == 127
        with pytest.raises(UserError, match="timed out"):
            t.run(["sleep", "5"], timeout=0.2)
        t.cleanup(d)
        assert not os.path.exists(d)
        t.cleanup("/")  # never removes a directory it did not make
        assert os.path.exists("/")


def test_private_key_open_to_others_is_refused(tmp_path):
    from edgeprune.targets.ssh import check_private_key

    key = tmp_path / "id_test"
    key.write_text("key")
    key.chmod(0o600)
    check_private_key(str(key))
    key.chmod(0o640)
    with pytest.raises(UserError, match=rf"mode 0640.*chmod 600 {key}$"):
        check_private_key(str(key))
    with pytest.raises(UserError, match="cannot read private key"):
        check_private_key(str(tmp_path / "missing"))


def test_ssh_flags_verbose_and_timeout():
    import argparse

    from edgeprune.cli.args import add_ssh_args, ssh_options_from_args

    p = argparse.ArgumentParser()
    add_ssh_args(p)
    quiet = ssh_options_from_args(p.parse_args([]))
    assert (quiet.verbose, quiet.connect_timeout) == (False, 10.0)
    assert ssh_options_from_args(p.parse_args(["--verbose"])).verbose


def test_connection_error_detail_is_part_of_the_sentence():
    from edgeprune.targets import TargetConnectionError

    err = TargetConnectionError("the connection to dev dropped during upload of m.onnx")
    err.add_detail("the remote directory /tmp/x could not be removed")
    assert str(err) == (
        "the connection to dev dropped during upload of m.onnx; "
        "the remote directory /tmp/x could not be removed"
    )
