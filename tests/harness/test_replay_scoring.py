"""``pase-bench replay`` scoring: the committed replay report is reproduced exactly.

The classic agents (random, rule-based, GCN-FR) are re-scored on the test side of DEPL, NET and
STO, as the README's *Replay* paragraph says ``benchmarks/fidelity/replay/replay.json`` was
produced, and every figure is compared with the committed file: macro-F1, its bootstrap
interval, the floor and ceiling, the per-class F1 and the confusion counts. Only the
wall-clock fields differ between machines. A change of the replay env, the class mapping, an
agent or a statistic that moves a published number fails here. The data set (GPL-3.0) is not
shipped; without it the test is skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pase_gym.harness.replay import evaluate

REPO = Path(__file__).resolve().parents[2]
DATA_ROOT = REPO.parent / "shared" / "data" / "failure-dataset-openstack"
STORED = REPO / "benchmarks" / "fidelity" / "replay" / "replay.json"
CLASSIC = ("random", "rule_based", "gcn_fr")
CAMPAIGNS = ("DEPL", "NET", "STO")
# fields that depend on the machine, not on the episodes
VOLATILE = frozenset({"compute_ms_per_decision"})


def _figures(results: dict[str, Any]) -> dict[str, Any]:
    return {
        agent: {
            campaign: {k: v for k, v in entry.items() if k not in VOLATILE}
            for campaign, entry in per.items()
        }
        for agent, per in results.items()
        if agent in CLASSIC
    }


@pytest.mark.skipif(
    not (DATA_ROOT / "DEPL" / "SEQ.tsv").is_file(),
    reason=f"Failure-Dataset-OpenStack (GPL-3.0, not shipped) is not at {DATA_ROOT}",
)
def test_classic_agents_reproduce_the_committed_replay_report() -> None:
    pytest.importorskip("torch")  # GCN-FR is one of the classic agents
    stored = json.loads(STORED.read_text(encoding="utf-8"))
    assert stored["meta"]["split"] == "test" and tuple(stored["meta"]["campaigns"]) == CAMPAIGNS
    report = evaluate(
        list(CLASSIC),
        campaigns=",".join(CAMPAIGNS),
        split=stored["meta"]["split"],
        rows=stored["meta"]["rows"],
        root=DATA_ROOT,
        max_steps=stored["meta"]["max_steps"],
        progress=False,
    )
    assert report["meta"]["rows_per_campaign"] == stored["meta"]["rows_per_campaign"]
    assert report["meta"]["bootstrap"] == stored["meta"]["bootstrap"]
    expected = _figures(stored["results"])
    assert sorted(expected) == sorted(CLASSIC), "the committed report lacks a classic agent"
    assert _figures(report["results"]) == expected
