"""Verifiers: score candidate plans before they run.

A :class:`Verifier` is anything with ``score(observations, plans) -> F`` (a float array, higher
is better; ``observations[i]`` is the :class:`~pase_gym.worldmodel.view.Seen` that
``plans[i]`` is proposed for). An agent or a leaderboard submission may use any of them:

* :class:`LearnedVerifier`: one or more trained world models (:mod:`.models`), their scores
  averaged, optionally fused with the symbolic layer: ``F = F_net - VETO`` for a plan with a
  call that breaks a visible precondition, so such a plan ranks below every clean plan
  whatever the network says (``F_net`` lies in [-2, 0]), and ``F = F_net - harm_penalty``
  for one that interrupts a healthy-looking node (a softer penalty: "looks healthy" is what
  the observation shows, not what the node is; the penalty is chosen on the training data's
  validation episodes and saved with the weights).
  :func:`load_verifier` loads the shipped NSWM (``nswm.pt`` beside this module).
* :class:`SymbolicVerifier`: the catalogue's rules alone (:mod:`.symbolic`).
* :class:`ExactVerifier`: the exact dry run of the true simulator (evaluation side: it holds
  the episode, which no agent may; the upper bound of the comparison).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pase_gym.errors import WorldModelError
from pase_gym.sim.plan import Call, Plan

from . import symbolic
from .features import CALL_DIM, SCENE_DIM, SYMBOLIC_DIM, Batch, encode
from .plans import plan_calls
from .view import Seen

FORMAT = "pase-gym-worldmodel/1"
VETO = 2.0
SHIPPED = Path(__file__).resolve().parent / "nswm.pt"
BATCH = 1024


@runtime_checkable
class Verifier(Protocol):
    """What scores plans: ``score(observations, plans)`` -> one float per plan."""

    name: str

    def score(
        self,
        observations: Sequence[Seen],
        plans: Sequence[Plan | Call | str],
        *,
        unknown: str = "error",
    ) -> np.ndarray:
        """Feasibility ``F`` of each ``(observations[i], plans[i])``, higher is better;
        ``unknown="veto"`` scores a plan naming a node the observation lacks as a violation
        instead of raising."""


class BatchVerifier:
    """A verifier that scores the encoded batch: :meth:`score` encodes the input (which checks
    it, :func:`~pase_gym.worldmodel.features.encode`) and hands it to :meth:`from_batch`."""

    name = "batch"

    def score(
        self,
        observations: Sequence[Seen],
        plans: Sequence[Plan | Call | str],
        *,
        unknown: str = "error",
    ) -> np.ndarray:
        """Feasibility of each ``(observations[i], plans[i])``, higher is better (``unknown``:
        see :func:`~pase_gym.worldmodel.features.encode`)."""
        batch = encode(observations, plans, unknown=unknown)
        return np.asarray(self.from_batch(batch, observations, plans), dtype=np.float64)

    def from_batch(
        self, batch: Batch, observations: Sequence[Seen], plans: Sequence[Plan | Call | str]
    ) -> np.ndarray:
        """``F`` of each plan of the encoded ``batch`` (the raw input beside it)."""
        raise NotImplementedError


class LearnedVerifier(BatchVerifier):
    """Trained world models (an ensemble when more than one), symbolic fusion optional."""

    def __init__(
        self,
        models: Sequence[Any],
        *,
        fusion: bool,
        name: str,
        device: str = "cpu",
        harm_penalty: float = 0.0,
    ) -> None:
        if not models:
            raise WorldModelError("expected at least one model")
        self.models = list(models)
        self.fusion = fusion
        self.harm_penalty = float(harm_penalty)
        self.name = name
        self.device = device
        for model in self.models:
            model.eval()

    def predict(self, batch: Batch) -> dict[str, np.ndarray]:
        """Mean outputs of the models on an encoded batch: ``F`` (fused when the verifier
        fuses), ``F_net``, ``recovered``/``risk`` probabilities, ``residual``, ``dh``."""
        import torch

        from .models import feasibility

        outs: list[dict[str, np.ndarray]] = []
        with torch.inference_mode():
            for start in range(0, len(batch), BATCH):
                part = slice(start, start + BATCH)
                tensors = [
                    torch.as_tensor(a[part], device=self.device)
                    for a in (batch.scene, batch.calls, batch.symbolic, batch.mask)
                ]
                per_model = []
                for model in self.models:
                    out = model(*tensors)
                    per_model.append(
                        {
                            "F_net": feasibility(out),
                            "recovered": torch.sigmoid(out["recovered"]),
                            "risk": torch.sigmoid(out["risk"]),
                            "residual": out["residual"],
                            "dh": out["dh"],
                        }
                    )
                outs.append(
                    {
                        k: torch.stack([p[k] for p in per_model]).mean(dim=0).cpu().numpy()
                        for k in per_model[0]
                    }
                )
        merged = {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
        merged["F"] = (
            fuse(merged["F_net"], batch, self.harm_penalty) if self.fusion else merged["F_net"]
        )
        return merged

    def from_batch(
        self, batch: Batch, observations: Sequence[Seen], plans: Sequence[Plan | Call | str]
    ) -> np.ndarray:
        """The models' (fused) ``F`` (:meth:`predict`)."""
        return self.predict(batch)["F"]


def fuse(f_net: np.ndarray, batch: Batch, harm_penalty: float) -> np.ndarray:
    """The symbolic layer's word on the network's ``F``: ``VETO`` off a plan with a visible
    violation, ``harm_penalty`` off one that interrupts a healthy-looking node."""
    counts = (batch.symbolic * batch.mask[..., None]).sum(axis=1)
    out: np.ndarray = f_net - VETO * (counts[:, 0] > 0) - harm_penalty * (counts[:, 1] > 0)
    return out


class SymbolicVerifier(BatchVerifier):
    """Rule-based plan feasibility from the catalogue alone (no learning).

    ``F = -(Risk + Severity)`` with ``Risk = min(1, violating calls + 0.5 * calls with harm
    risk)`` and ``Severity = 1 - coverage`` (the share of alarmed rows the plan does not act
    on): a plan that breaks a visible precondition, interrupts a healthy-looking node or
    leaves the alarms alone scores low.
    """

    name = "symbolic"

    def from_batch(
        self, batch: Batch, observations: Sequence[Seen], plans: Sequence[Plan | Call | str]
    ) -> np.ndarray:
        """The rules' ``F`` from the batch's symbolic flags and each plan's coverage."""
        counts = (batch.symbolic * batch.mask[..., None]).sum(axis=1)
        covered = [symbolic.coverage(s, p) for s, p in zip(observations, plans, strict=True)]
        return symbolic.symbolic_feasibility(counts, np.array(covered))


class ExactVerifier:
    """The true simulator's dry run as a verifier (evaluation side; the upper bound).

    ``F = -(Risk + Severity)`` with ``Risk`` 1 when the dry run harmed a node or violated a
    precondition, and ``Severity`` 1 when it did not recover (plus the residual share of
    nodes breaking their SLO). It ignores the observations: it scores plans for ``episode``'s
    current state.
    """

    name = "exact"

    def __init__(self, episode: Any) -> None:
        self.episode = episode

    def score(
        self,
        observations: Sequence[Seen],
        plans: Sequence[Plan | Call | str],
        *,
        unknown: str = "veto",
    ) -> np.ndarray:
        """Feasibility of each plan by dry run of the episode's current state (an unknown
        name is a violation there)."""
        outcomes = [self.episode.simulate(Plan(plan_calls(plan))) for plan in plans]
        return exact_feasibility(
            np.array([bool(p.harmed or p.violations) for p in outcomes]),
            np.array([p.recovered for p in outcomes]),
            np.array([p.residual for p in outcomes]),
        )


def exact_feasibility(risky: np.ndarray, recovered: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """:class:`ExactVerifier`'s ``F`` from dry-run outcomes: ``-(Risk + Severity)``, ``Risk``
    1 for harm or a violation, ``Severity`` 1 for no recovery plus the residual share of nodes
    breaking their SLO."""
    out: np.ndarray = -(risky.astype(float) + 1.0 - recovered.astype(float) + residual)
    return out


def save(models: Sequence[Any], path: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``models``' weights (one file) and ``<path>.json`` with ``meta``."""
    import torch

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {f"{i}.{k}": v for i, m in enumerate(models) for k, v in m.state_dict().items()}
    torch.save(state, out)
    header = {
        "format": FORMAT,
        "scene_dim": SCENE_DIM,
        "call_dim": CALL_DIM,
        "symbolic_dim": SYMBOLIC_DIM,
        "members": len(models),
        **meta,
    }
    out.with_name(out.name + ".json").write_text(json.dumps(header, indent=2) + "\n")
    return out


def load_verifier(path: str | Path | None = None, device: str = "cpu") -> LearnedVerifier:
    """The verifier saved at ``path`` (default: the shipped NSWM).

    Raises:
        WorldModelError: the file or its ``.json`` header is missing, or was written for
            other features or by another version.
    """
    import torch

    from .models import build

    weights = Path(path) if path is not None else SHIPPED
    header_path = weights.with_name(weights.name + ".json")
    if not weights.is_file() or not header_path.is_file():
        raise WorldModelError(
            f"{weights}: expected a weights file and its .json header beside it "
            "(train one with: pase-gym worldmodel train)"
        )
    try:
        header = json.loads(header_path.read_text())
    except (OSError, ValueError) as exc:
        raise WorldModelError(f"{header_path}: not a JSON header ({exc})") from None
    expected = {
        "format": FORMAT,
        "scene_dim": SCENE_DIM,
        "call_dim": CALL_DIM,
        "symbolic_dim": SYMBOLIC_DIM,
    }
    wrong = {k: header.get(k) for k, v in expected.items() if header.get(k) != v}
    if wrong:
        raise WorldModelError(
            f"{header_path}: written for other features or another version: expected "
            f"{ {k: expected[k] for k in wrong} }, found {wrong}"
        )
    try:
        state = torch.load(weights, map_location=device, weights_only=True)
        models = []
        for i in range(int(header["members"])):
            model = build(header["architecture"], bool(header["symbolic"]), int(header["hidden"]))
            prefix = f"{i}."
            model.load_state_dict(
                {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            )
            models.append(model.to(device))
    except Exception as exc:  # a corrupt or foreign file fails in many ways, all of them here
        raise WorldModelError(
            f"{weights}: the weights do not load ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None
    return LearnedVerifier(
        models,
        fusion=bool(header["fusion"]),
        name=str(header["name"]),
        device=device,
        harm_penalty=float(header.get("harm_penalty", 0.0)),
    )
