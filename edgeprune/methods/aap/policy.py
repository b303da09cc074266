"""AAP's adaptive threshold policy (Algorithms 2-4) as a pure state machine.

Each round r prunes with the global threshold ``T`` from the model of round ``current`` and
reports one outcome: acceptable or not, and the model's size (params, FLOPs or latency:
what the goal measures). ``advance`` returns the next state:

- acceptable: round r becomes the last acceptable round; if the size changed by at most
  ``converge_tol`` (relative) for ``converge_rounds`` acceptable rounds in a row, stop;
  otherwise T[r+1] = T[r] + lambda (lambda unchanged);
- violation: take the last acceptable round k not marked unacceptable; if k was already
  rolled back to ``max_rollbacks`` times, mark it unacceptable and take the one before
  (round 0, the dense model, is never marked: the policy stops instead); else roll back
  to k with lambda[r+1] = lambda[r] / 2^(C+1), C = earlier roll-backs to k, and
  T[r+1] = T[k] + lambda[r+1].

Literal reading of the paper's formula: lambda[r] is the lambda of the violating round, so
repeated roll-backs to one round shrink lambda by 2, then 8, then 64 overall.
One addition, ``converge_after_rollback``: size stability only counts once lambda has been
cut at least once, so the first rounds (a small T that prunes nothing yet) do not end the
run before it has pruned anything. "Several" is a parameter (3 by default).
``lam_rule="reset"`` (ours) cuts round 1's lambda instead of the current one, so
consecutive roll-backs do not compound (lambda / 2^(C+1) of the first lambda).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class PolicyConfig:
    """The policy's constants (the paper: T = 0, lambda = 0.01, 0.1%)."""

    t0: float = 0.0
    lam0: float = 0.01
    max_rollbacks: int = 3
    converge_tol: float = 0.001
    converge_rounds: int = 3
    converge_after_rollback: bool = True
    max_rounds: int = 100
    lam_rule: str = "paper"  # reset: cut the first round's lambda, not the current one


@dataclass(frozen=True)
class PolicyState:
    """Where the policy stands before round ``round + 1``."""

    T: float
    lam: float
    round: int = 0
    current: int = 0  # the round whose model the next round prunes
    accepted: dict[int, float] = field(default_factory=dict)  # acceptable round -> its T
    sizes: dict[int, float] = field(default_factory=dict)  # acceptable round -> size
    rollbacks: dict[int, int] = field(default_factory=dict)  # round -> roll-backs to it
    unacceptable: tuple[int, ...] = ()
    stable: int = 0  # acceptable rounds in a row with a size change <= tol
    cut: bool = False  # lambda has been cut at least once
    done: bool = False
    reason: str = ""
    lam_init: float | None = None  # lambda of round 1 (lam_rule=reset cuts this one)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PolicyState:
        d = dict(d)
        for key in ("accepted", "sizes", "rollbacks"):
            d[key] = {int(k): v for k, v in d[key].items()}
        d["unacceptable"] = tuple(d["unacceptable"])
        return cls(**d)


def initial_state(
    cfg: PolicyConfig, dense_size: float, t1: float | None = None, lam1: float | None = None
) -> PolicyState:
    """Round 0 is the dense model: acceptable, with T = t0 (the paper). ``t1``/``lam1``
    (ours, from the attention distribution): round 1 prunes at ``t1`` with lambda ``lam1``,
    and round 0 counts as T = max(0, t1 - lam1), so a roll-back to it lands between."""
    if t1 is None:
        return PolicyState(
            T=cfg.t0, lam=cfg.lam0, accepted={0: cfg.t0}, sizes={0: dense_size}, lam_init=cfg.lam0
        )
    lam = cfg.lam0 if lam1 is None else lam1
    t0 = max(0.0, t1 - lam)
    return PolicyState(T=t1, lam=lam, accepted={0: t0}, sizes={0: dense_size}, lam_init=lam)


def _accept(s: PolicyState, cfg: PolicyConfig, r: int, size: float) -> PolicyState:
    parent = s.sizes[s.current]
    change = abs(size - parent) / parent if parent else 0.0
    counts = s.cut or not cfg.converge_after_rollback
    stable = s.stable + 1 if (change <= cfg.converge_tol and counts) else 0
    s = replace(
        s,
        round=r,
        current=r,
        accepted={**s.accepted, r: s.T},
        sizes={**s.sizes, r: size},
        stable=stable,
    )
    if stable >= cfg.converge_rounds:
        return replace(s, done=True, reason="converged")
    return replace(s, T=s.T + s.lam)


def _roll_back(s: PolicyState, cfg: PolicyConfig, r: int) -> PolicyState:
    unacceptable = list(s.unacceptable)
    while True:
        k = max(i for i in s.accepted if i not in unacceptable)
        c = s.rollbacks.get(k, 0)
        if c < cfg.max_rollbacks:
            base = s.lam_init if (cfg.lam_rule == "reset" and s.lam_init) else s.lam
            lam = base / 2.0 ** (c + 1)
            return replace(
                s,
                round=r,
                current=k,
                lam=lam,
                T=s.accepted[k] + lam,
                rollbacks={**s.rollbacks, k: c + 1},
                unacceptable=tuple(unacceptable),
                cut=True,
            )
        if k == 0:
            return replace(
                s,
                round=r,
                current=0,
                unacceptable=tuple(unacceptable),
                done=True,
                reason="no acceptable round left to roll back to",
            )
        unacceptable.append(k)


def advance(s: PolicyState, cfg: PolicyConfig, acceptable: bool, size: float) -> PolicyState:
    """The state after round ``s.round + 1`` (pruned with ``s.T`` from ``s.current``)."""
    if s.done:
        raise ValueError("the policy has already terminated")
    r = s.round + 1
    s = _accept(s, cfg, r, size) if acceptable else _roll_back(s, cfg, r)
    if not s.done and r >= cfg.max_rounds:
        s = replace(s, done=True, reason="max_rounds")
    return s


def last_acceptable(s: PolicyState) -> int:
    """The last acceptable round not marked unacceptable."""
    return max(i for i in s.accepted if i not in s.unacceptable)
