"""How hard is diagnosis? Single observation tokens that give the fault type away.

A benchmark whose fault types can each be read off one line of the scene separates agents by
how they act, never by how they reason. This module measures that on the observations an
agent gets when an incident first raises an alarm (the first decision of every episode):

* **tokens**: the observation as an operator reads it, cut into single pieces (what the scene
  description D_t shows): each recent log line as a template (node names and numbers masked),
  each raised alarm kind (and the kind on a role), each error event seen and each event type
  far below its normal rate, and the size of the cloud;
* **per fault type**: the token that identifies it best (F1) with its precision and recall,
  and whether some token is a *giveaway*: precision >= :data:`GIVEAWAY_PRECISION` and recall
  >= :data:`GIVEAWAY_RECALL` (one line names the fault in most of its episodes);
* **before the onset**: how well the fault type is predicted from what is seen before any
  fault strikes (the cloud's size), against always guessing the commonest type: a scenario
  whose cloud is recognisable gives its fault away before it happens;
* **a plain model** (with the ``bench`` extra): logistic regression on the bag of tokens,
  trained on the train split's first alarms, scored by detection macro-F1 on the test split's.

``pase-bench hardness --out benchmarks/hardness`` writes ``hardness.md`` and
``hardness.json``. The evaluation side builds the episodes here (it reads the ground truth
for the labels); no agent is involved.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from pase_gym.env.describe import MAX_LOGS, event_anomalies
from pase_gym.episode import Episode
from pase_gym.scenarios import list_scenarios, load_scenario
from pase_gym.sim.roles import ROLE_NAMES
from pase_gym.sim.signals import EVENT_NAMES, Observation, baseline_event_rates
from pase_gym.sim.state import SimState

GIVEAWAY_PRECISION = 0.9
GIVEAWAY_RECALL = 0.5
DEFAULT_EPISODES = 500
_NODE = re.compile(r"\b[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*-\d+\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def template(text: str) -> str:
    """A log line with node names and numbers masked (``nova-compute-3`` -> ``<node>``)."""
    return _NUMBER.sub("<n>", _NODE.sub("<node>", text))


def observation_tokens(state: SimState, obs: Observation, baseline: np.ndarray) -> set[str]:
    """The single pieces of what the scene description shows for ``obs``."""
    t = state.topo
    tokens = {f"cloud: {int(state.active.sum())} active nodes"}
    for node, alarm, _ in obs.alarms:
        tokens.add(f"alarm: {alarm}")
        tokens.add(f"alarm: {alarm} on {ROLE_NAMES[int(t.role[t.index[node]])]}")
    for line in obs.logs[-MAX_LOGS:]:
        tokens.add(f"log: {template(line.text)}")
    # the event anomalies the description names (its own rule), over the span the
    # observation's counts cover: the episode so far (this is its first observation)
    drops, errors = event_anomalies(obs.events, baseline * max(obs.tick, 1))
    tokens.update(f"event: {EVENT_NAMES[i]}" for i in errors)
    tokens.update(f"event: {EVENT_NAMES[i]} below normal" for i, _ in drops)
    return tokens


@dataclass(frozen=True)
class Sample:
    """One episode's first alarm: its scenario, seed, injected fault type and tokens."""

    scenario: str
    seed: int
    fault_type: str
    tokens: frozenset[str]
    cloud: int  # active nodes before the onset


def first_alarms(
    split: str, episodes: int = DEFAULT_EPISODES, progress: Callable[[int], None] | None = None
) -> list[Sample]:
    """At least ``episodes`` first-alarm samples of ``split``: every scenario of the split,
    seeds 0, 1, ... in turn."""
    names = list_scenarios(split)
    per = -(-episodes // len(names))
    out: list[Sample] = []
    for name in names:
        spec = load_scenario(name)
        for seed in range(per):
            episode = Episode(spec, seed)
            cloud = int(episode.state.active.sum())  # the fresh state: before any onset
            obs = episode.reset(skip_to_incident=True)
            truth = sorted(episode.ground_truth(), key=lambda f: f["onset"])
            tokens = observation_tokens(episode.state, obs, baseline_event_rates(episode.state))
            out.append(Sample(name, seed, truth[0]["fault_type"], frozenset(tokens), cloud))
            if progress is not None:
                progress(1)
    return out


@dataclass(frozen=True)
class TokenScore:
    """How well one token identifies one fault type."""

    token: str
    precision: float
    recall: float

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)


@dataclass(frozen=True)
class FaultHardness:
    """The most telling tokens for one fault type."""

    fault_type: str
    episodes: int
    best: TokenScore  # the highest F1
    giveaway: TokenScore | None  # the highest recall among tokens of high precision

    @property
    def given_away(self) -> bool:
        """Some single token names the fault in most of its episodes."""
        return self.giveaway is not None and self.giveaway.recall >= GIVEAWAY_RECALL


def fault_hardness(samples: Sequence[Sample]) -> list[FaultHardness]:
    """Per fault type (sorted), its best token and its giveaway token, if any."""
    labels = Counter(s.fault_type for s in samples)
    present: Counter[str] = Counter()
    joint: Counter[tuple[str, str]] = Counter()
    for s in samples:
        for token in s.tokens:
            present[token] += 1
            joint[(token, s.fault_type)] += 1
    out = []
    for fault, n in sorted(labels.items()):
        scores = [
            TokenScore(token, joint[(token, fault)] / present[token], joint[(token, fault)] / n)
            for token in present
            if joint[(token, fault)]
        ]
        best = max(scores, key=lambda s: (s.f1, s.precision, s.token))
        sharp = [s for s in scores if s.precision >= GIVEAWAY_PRECISION]
        giveaway = max(sharp, key=lambda s: (s.recall, s.precision, s.token)) if sharp else None
        out.append(FaultHardness(fault, n, best, giveaway))
    return out


def pre_onset_accuracy(samples: Sequence[Sample]) -> tuple[float, float]:
    """(accuracy, majority rate) of predicting the fault type from the cloud's size alone.

    A lookup size -> commonest fault type, fitted on even seeds and scored on odd ones; the
    majority rate is always guessing the commonest type of the even seeds.
    """
    fit = [s for s in samples if s.seed % 2 == 0]
    held = [s for s in samples if s.seed % 2 == 1]
    if not fit or not held:
        return float("nan"), float("nan")
    by_size: dict[int, Counter[str]] = {}
    for s in fit:
        by_size.setdefault(s.cloud, Counter())[s.fault_type] += 1
    majority = Counter(s.fault_type for s in fit).most_common(1)[0][0]
    guess = {size: c.most_common(1)[0][0] for size, c in by_size.items()}
    accuracy = float(np.mean([guess.get(s.cloud, majority) == s.fault_type for s in held]))
    return accuracy, float(np.mean([s.fault_type == majority for s in held]))


def token_model_f1(train: Sequence[Sample], test: Sequence[Sample]) -> float | None:
    """Detection macro-F1 on ``test`` of a logistic regression on token bags fitted on
    ``train`` (``None`` without scikit-learn)."""
    try:
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        return None
    from pase_gym.stats import macro_f1

    vec = DictVectorizer()
    x = vec.fit_transform([dict.fromkeys(s.tokens, 1) for s in train])
    model = LogisticRegression(max_iter=2000, C=1.0, class_weight="balanced")
    model.fit(x, [s.fault_type for s in train])
    predicted = model.predict(vec.transform([dict.fromkeys(s.tokens, 1) for s in test]))
    return float(macro_f1([s.fault_type for s in test], list(predicted)))


@dataclass
class HardnessReport:
    """Everything the report says, per split."""

    episodes: dict[str, int] = field(default_factory=dict)
    faults: dict[str, list[FaultHardness]] = field(default_factory=dict)
    pre_onset: dict[str, tuple[float, float]] = field(default_factory=dict)
    token_model_f1: float | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-able form."""

        def score(s: TokenScore | None) -> dict[str, object] | None:
            if s is None:
                return None
            return {"token": s.token, "precision": s.precision, "recall": s.recall, "f1": s.f1}

        return {
            "giveaway_precision": GIVEAWAY_PRECISION,
            "giveaway_recall": GIVEAWAY_RECALL,
            "episodes": self.episodes,
            "faults": {
                split: [
                    {
                        "fault_type": f.fault_type,
                        "episodes": f.episodes,
                        "best": score(f.best),
                        "giveaway": score(f.giveaway),
                        "given_away": f.given_away,
                    }
                    for f in faults
                ]
                for split, faults in self.faults.items()
            },
            "pre_onset": {
                split: {"accuracy": a, "majority": m} for split, (a, m) in self.pre_onset.items()
            },
            "token_model_test_f1": self.token_model_f1,
        }


def build_report(
    splits: Iterable[str] = ("train", "test"),
    episodes: int = DEFAULT_EPISODES,
    progress: Callable[[int], None] | None = None,
) -> HardnessReport:
    """Sample every split and measure it (the token model needs ``train`` and ``test``)."""
    report = HardnessReport()
    samples = {}
    for split in splits:
        samples[split] = first_alarms(split, episodes, progress)
        report.episodes[split] = len(samples[split])
        report.faults[split] = fault_hardness(samples[split])
        report.pre_onset[split] = pre_onset_accuracy(samples[split])
    if "train" in samples and "test" in samples:
        report.token_model_f1 = token_model_f1(samples["train"], samples["test"])
    return report


def _cell(s: TokenScore | None) -> str:
    if s is None:
        return "—"
    token = s.token.replace("|", "\\|")
    return f"`{token}` ({s.precision:.2f} / {s.recall:.2f})"


def markdown(report: HardnessReport) -> str:
    """The report as Markdown."""
    lines = [
        "# Diagnosis hardness: what gives a fault type away at its first alarm",
        "",
        "Generated by `pase-bench hardness`. Tokens are single pieces of the first-alarm scene "
        "(log templates, alarm kinds, event anomalies, the cloud's size); a *giveaway* is a "
        f"token with precision >= {GIVEAWAY_PRECISION} and recall >= {GIVEAWAY_RECALL}. "
        "Cells: `token` (precision / recall).",
        "",
    ]
    for split, faults in report.faults.items():
        given = sum(f.given_away for f in faults)
        accuracy, majority = report.pre_onset[split]
        lines += [
            f"## {split} split: {report.episodes[split]} first alarms, "
            f"{given} of {len(faults)} fault types given away",
            "",
            f"Before any onset the cloud's size alone predicts the fault type with accuracy "
            f"{accuracy:.2f} (always guessing the commonest type: {majority:.2f}).",
            "",
            "| fault type | episodes | best token (F1) | giveaway token |",
            "|---|---:|---|---|",
        ]
        for f in faults:
            mark = "**yes**: " if f.given_away else ""
            lines.append(
                f"| {f.fault_type} | {f.episodes} | {_cell(f.best)} | "
                f"{mark}{_cell(f.giveaway) if f.given_away else '—'} |"
            )
        lines.append("")
    if report.token_model_f1 is not None:
        lines += [
            "A logistic regression on the bag of first-alarm tokens, fitted on the train split, "
            f"scores detection macro-F1 **{report.token_model_f1:.2f}** on the test split.",
            "",
        ]
    return "\n".join(lines)
