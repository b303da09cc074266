"""The SSH options shared by every command that reaches a remote device."""

from __future__ import annotations

import argparse


def add_ssh_args(p: argparse.ArgumentParser) -> None:
    """Add --host, --key, --known-hosts, --trust-host-key, --verbose and friends to ``p``."""
    ssh = p.add_argument_group("SSH (remote devices)")
    ssh.add_argument("--host", help="USER@HOST[:PORT] or a Host alias from ~/.ssh/config")
    ssh.add_argument(
        "--key", help="private key file, never stored (default: ssh-agent / ssh config / ~/.ssh)"
    )
    ssh.add_argument("--known-hosts", default="~/.ssh/known_hosts", help="known_hosts file")
    ssh.add_argument(
        "--trust-host-key",
        action="store_true",
        help="accept an unknown or changed host key (only if you verified it)",
    )
    ssh.add_argument("--ssh-config", default="~/.ssh/config", help="ssh config file for aliases")
    ssh.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        help="seconds for the TCP connection, the SSH banner and the login (default 10)",
    )
    ssh.add_argument("--retries", type=int, default=3, help="connection attempts on network errors")
    ssh.add_argument("--remote-python", help="python on the device (default: profile or python3)")
    ssh.add_argument(
        "--verbose", action="store_true", help="show the SSH library's log (handshake, errors)"
    )


def ssh_options_from_args(args: argparse.Namespace):
    """The SSHOptions those flags describe (host and key are passed separately)."""
    from edgeprune.targets.ssh import SSHOptions

    return SSHOptions(
        known_hosts=args.known_hosts,
        trust_host_key=args.trust_host_key,
        connect_timeout=args.connect_timeout,
        retries=args.retries,
        ssh_config=args.ssh_config,
        verbose=args.verbose,
    )
