"""The one timing routine of the project (shared with the device agent)."""

from __future__ import annotations

from edgeprune.deploy_agent.edgeprune_agent import measure, summarize

__all__ = ["measure", "summarize"]
