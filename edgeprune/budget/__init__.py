"""Budgets and the controller that turns a budget on a device into a pruning plan."""

from edgeprune.budget.budget import Budget, budget_from_args, load_budget_yaml, parse_latency

__all__ = ["Budget", "budget_from_args", "load_budget_yaml", "parse_latency"]
