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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pase_gym.env.describe import MAX_LOGS, event_anomalies
from pase_gym.harness.expert import (
    KIND_OF_ROLE,
    MAX_PROBES,
    logged_nodes,
    next_probe,
    public_topology,
    read_findings,
)
from pase_gym.scenarios import list_scenarios
from pase_gym.sim.observe import VIEWS
from pase_gym.sim.plan import parse_plan
from pase_gym.sim.roles import ROLE_NAMES
from pase_gym.sim.signals import EVENT_NAMES, Observation
from pase_gym.sim.state import IND, SimState

ENV_ID = "PASE-OpenStack-v4"
WAIT = "Wait(10)"
MAX_WAIT_STEPS = 120  # monitoring steps before giving up on an incident that never alarms
GIVEAWAY_PRECISION = 0.9
GIVEAWAY_RECALL = 0.5
DEFAULT_EPISODES = 500
_NODE = re.compile(r"\b[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*-\d+\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def template(text: str) -> str:
    """A log line with node names and numbers masked (``nova-compute-3`` -> ``<node>``)."""
    return _NUMBER.sub("<n>", _NODE.sub("<node>", text))


def observation_tokens(state: SimState, obs: Observation, expected: np.ndarray) -> set[str]:
    """The single pieces of what the scene description shows for ``obs``; ``expected`` is
    the healthy cloud's event counts over the span ``obs``'s counts cover."""
    t = state.topo
    tokens = {f"cloud: {int(state.active.sum())} active nodes"}
    for node, alarm, _ in obs.alarms:
        tokens.add(f"alarm: {alarm}")
        tokens.add(f"alarm: {alarm} on {ROLE_NAMES[int(t.role[t.index[node]])]}")
    for line in obs.logs[-MAX_LOGS:]:
        tokens.add(f"log: {template(line.text)}")
    # the event anomalies the description names (its own rule)
    drops, errors = event_anomalies(obs.events, expected)
    tokens.update(f"event: {EVENT_NAMES[i]}" for i in errors)
    tokens.update(f"event: {EVENT_NAMES[i]} below normal" for i, _ in drops)
    return tokens


@dataclass(frozen=True)
class Sample:
    """One episode's first alarm: its scenario, seed, injected fault type and tokens, and
    what the classifiers and the expert of the report need of it."""

    scenario: str
    seed: int
    fault_type: str
    tokens: frozenset[str]
    cloud: int  # active nodes before the onset
    features: Mapping[str, np.ndarray] = field(default_factory=dict)  # view -> summary
    diagnoses: Mapping[str, str] = field(default_factory=dict)  # who -> fault type named
    probes: int = 0  # nodes the expert inspected


def run_to_alarm(env: Any, seed: int) -> tuple[dict[str, Any], dict[str, Any], int, int]:
    """Reset ``env`` with ``seed`` and monitor (``Wait(10)``) until an alarm is raised, as
    the harness runs an agent. Returns the observation, ``info``, the cloud's size before
    any onset and the ticks the last observation's event counts cover."""
    obs, info = env.reset(seed=seed)
    cloud = len(info["node_names"])
    interval = int(info["tick"])
    for _ in range(MAX_WAIT_STEPS):
        if info["alarms"]:
            break
        before = int(info["tick"])
        obs, _, terminated, truncated, info = env.step(WAIT)
        interval = int(info["tick"]) - before
        if terminated or truncated:
            break
    return obs, info, cloud, max(interval, 1)


def summary_features(obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """A fixed-length summary of the numeric observation that does not depend on the
    cloud's size: per node kind (host, service, queue, ...), the max, min and mean of each
    indicator, the indicators of its most alarmed node, and the max and mean of each alarm;
    then the log-scaled API/RPC event counts. What the report's plain model reads."""
    mask, roles, _, _ = public_topology(obs)
    kinds = KIND_OF_ROLE[roles]
    metrics = np.asarray(obs["metrics"], dtype=np.float64)
    alarms = np.asarray(obs["alarms"], dtype=np.float64)
    parts: list[np.ndarray] = []
    for kind in sorted(set(KIND_OF_ROLE.tolist())):
        idx = mask & (kinds == kind)
        if not idx.any():
            parts += [np.zeros(metrics.shape[1])] * 4 + [np.zeros(alarms.shape[1])] * 2
            continue
        m, a = metrics[idx], alarms[idx]
        top = m[int(np.argmax(a.sum(axis=1) * 10.0 + m[:, IND["latency"]]))]
        parts += [m.max(axis=0), m.min(axis=0), m.mean(axis=0), top, a.max(axis=0), a.mean(axis=0)]
    parts.append(np.log1p(np.asarray(obs["events"], dtype=np.float64)))
    return np.concatenate(parts)


def first_alarms(
    split: str,
    episodes: int = DEFAULT_EPISODES,
    progress: Callable[[int], None] | None = None,
    *,
    agents: Mapping[str, Any] | None = None,
    expert: bool = False,
) -> list[Sample]:
    """At least ``episodes`` first-alarm samples of ``split``: every scenario of the split,
    seeds 0, 1, ... in turn, each run through the env (:data:`ENV_ID`) until its first
    alarm, once in each view (:data:`pase_gym.sim.observe.VIEWS`); the tokens and the
    agents read the default (service) view.

    Args:
        split: the split.
        episodes: samples to draw at least.
        progress: called with 1 per sample.
        agents: name -> agent; each is asked once at the first alarm and the fault type of
            the ``Diagnose`` in its answer is recorded (``none`` without one).
        expert: also run the scripted expert (:mod:`pase_gym.harness.expert`): it inspects
            up to :data:`~pase_gym.harness.expert.MAX_PROBES` nodes one at a time and names
            the fault type its findings name (it steps the env, so it runs last).
    """
    import gymnasium as gym

    import pase_gym  # noqa: F401  (registers the ids)
    from pase_gym.env.core import PaseOpenStackEnv

    names = list_scenarios(split)
    per = -(-episodes // len(names))
    out: list[Sample] = []
    for name in names:
        envs = {view: gym.make(ENV_ID, scenario=name, view=view) for view in VIEWS}
        try:
            for seed in range(per):
                features = {"node": summary_features(run_to_alarm(envs["node"], seed)[0])}
                env = envs["service"]
                obs, info, cloud, interval = run_to_alarm(env, seed)
                features["service"] = summary_features(obs)
                base = env.unwrapped
                assert isinstance(base, PaseOpenStackEnv)
                episode = base.current_episode()
                truth = sorted(episode.ground_truth(), key=lambda f: f["onset"])
                signals, baseline = base.last_signals, base.baseline_events
                assert signals is not None and baseline is not None  # set by reset()
                tokens = observation_tokens(episode.state, signals, baseline * interval)
                diagnoses = {
                    who: _diagnosed(agent, seed, obs, info) for who, agent in (agents or {}).items()
                }
                probes = 0
                if expert:
                    diagnoses["expert"], probes = _expert(env, obs, info)
                sample = Sample(
                    name,
                    seed,
                    truth[0]["fault_type"],
                    frozenset(tokens),
                    cloud,
                    features,
                    diagnoses,
                    probes,
                )
                out.append(sample)
                if progress is not None:
                    progress(1)
        finally:
            for env in envs.values():
                env.close()
    return out


def _diagnosed(agent: Any, seed: int, obs: dict[str, Any], info: dict[str, Any]) -> str:
    """The fault type an agent's first answer diagnoses (``none`` without a diagnosis)."""
    agent.reset(seed)
    plan = agent.act(obs, info)
    if isinstance(plan, str):
        plan = parse_plan(plan)
    diagnosis = getattr(plan, "diagnosis", None)
    return str(diagnosis.fault_type) if diagnosis is not None else "none"


def _expert(env: Any, obs: dict[str, Any], info: dict[str, Any]) -> tuple[str, int]:
    """The scripted expert on a live env at its first alarm: (fault type, probes used)."""
    names = info["slot_names"]
    logged = logged_nodes(info["description"])
    reports: list[dict[str, Any]] = []
    for _ in range(MAX_PROBES):
        node = next_probe(obs, names, reports, logged)
        if node is None:
            break
        _, _, terminated, truncated, after = env.step(f"Inspect({node})")
        reports.extend(after["probes"])
        found = read_findings(after["probes"])
        if found is not None:
            return found[0], len(reports)
        if terminated or truncated:
            break
    return "none", len(reports)


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


def flat_model_f1(train: Sequence[Sample], test: Sequence[Sample], view: str) -> float | None:
    """Detection macro-F1 on ``test`` of a logistic regression on the numeric observation's
    summary (:func:`summary_features`) in ``view``, fitted on ``train`` (``None`` without
    scikit-learn)."""
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError:
        return None
    from pase_gym.stats import macro_f1

    model = make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=5000, C=1.0, class_weight="balanced")
    )
    model.fit(np.stack([s.features[view] for s in train]), [s.fault_type for s in train])
    predicted = model.predict(np.stack([s.features[view] for s in test]))
    return float(macro_f1([s.fault_type for s in test], list(predicted)))


def diagnosis_f1(samples: Sequence[Sample], who: str) -> float:
    """Detection macro-F1 of ``who``'s diagnoses (``none`` is a miss, never a class)."""
    from pase_gym.stats import macro_f1

    return float(
        macro_f1(
            [s.fault_type for s in samples],
            [s.diagnoses.get(who, "none") for s in samples],
            abstain={"none"},
        )
    )


@dataclass
class HardnessReport:
    """Everything the report says, per split."""

    episodes: dict[str, int] = field(default_factory=dict)
    faults: dict[str, list[FaultHardness]] = field(default_factory=dict)
    pre_onset: dict[str, tuple[float, float]] = field(default_factory=dict)
    token_model_f1: float | None = None
    flat_model_f1: dict[str, float] = field(default_factory=dict)  # view -> test F1
    diagnosis_f1: dict[str, dict[str, float]] = field(default_factory=dict)  # split -> who
    expert_probes: dict[str, float] = field(default_factory=dict)  # split -> mean probes

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
            "flat_model_test_f1": self.flat_model_f1,
            "diagnosis_f1": self.diagnosis_f1,
            "expert_mean_probes": self.expert_probes,
        }


def build_report(
    splits: Iterable[str] = ("train", "test"),
    episodes: int = DEFAULT_EPISODES,
    progress: Callable[[int], None] | None = None,
    agents: Mapping[str, Any] | None = None,
    expert: bool = True,
) -> HardnessReport:
    """Sample every split and measure it (the token and flat models need ``train`` and
    ``test``); ``agents`` (name -> agent) are scored on their first answer at each first
    alarm and the scripted expert with its probes (``expert``)."""
    report = HardnessReport()
    samples = {}
    for split in splits:
        samples[split] = first_alarms(split, episodes, progress, agents=agents, expert=expert)
        report.episodes[split] = len(samples[split])
        report.faults[split] = fault_hardness(samples[split])
        report.pre_onset[split] = pre_onset_accuracy(samples[split])
        who = [*(agents or {}), *(["expert"] if expert else [])]
        report.diagnosis_f1[split] = {w: diagnosis_f1(samples[split], w) for w in who}
        if expert:
            report.expert_probes[split] = float(np.mean([s.probes for s in samples[split]]))
    if "train" in samples and "test" in samples:
        report.token_model_f1 = token_model_f1(samples["train"], samples["test"])
        for view in VIEWS:
            f1 = flat_model_f1(samples["train"], samples["test"], view)
            if f1 is not None:
                report.flat_model_f1[view] = f1
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
    lines += ["## Detection without and with probes", ""]
    if report.token_model_f1 is not None:
        lines += [
            "- A logistic regression on the bag of first-alarm tokens, fitted on the train "
            f"split, scores detection macro-F1 **{report.token_model_f1:.2f}** on the test "
            "split.",
        ]
    for view, f1 in report.flat_model_f1.items():
        shown = {"service": "the default service view", "node": "the per-node view"}[view]
        lines.append(
            f"- A logistic regression on the numeric observation's summary in {shown} "
            f'(`view="{view}"`; per node kind the max, min and mean of each indicator and '
            f"alarm and the most alarmed node's row, and the event counts), fitted on the "
            f"train split: test macro-F1 **{f1:.2f}**."
        )
    for split, scores in report.diagnosis_f1.items():
        for who, f1 in scores.items():
            if who == "expert":
                lines.append(
                    f"- The scripted expert (`pase_gym.harness.expert`: at most {MAX_PROBES} "
                    f"`Inspect` probes along the alarms' dependency path, "
                    f"{report.expert_probes[split]:.2f} on average) on the {split} split: "
                    f"macro-F1 **{f1:.2f}**."
                )
            else:
                lines.append(
                    f"- `{who}`'s first answer at the first alarm (no probe) on the {split} "
                    f"split: macro-F1 **{f1:.2f}**."
                )
    lines.append("")
    return "\n".join(lines)
