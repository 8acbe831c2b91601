"""The hidden split: scenarios that are not in the package, drawn from a secret key.

A public test split can be learnt by heart; a board that researchers can trust also scores
agents on scenarios nobody has seen. Whoever runs the board holds a key (the environment
variable :data:`KEY_ENV`, or a file named by :data:`KEY_FILE_ENV` or ``--hidden-key-file``,
outside the repository); every hidden scenario is drawn from it, deterministically:

* its fault type from the families of the public ``test`` split plus the ``unseen`` ones;
* its cloud (a size between :data:`MIN_NODES` and :data:`MAX_NODES`, a layout seed), its
  workload (profile, intensity) and its onset window, each from a generator seeded by
  ``HMAC-SHA256(key, "scenario:<i>")``;
* only scenarios whose fault can strike the drawn cloud are kept (a draw that cannot is
  replaced by the next one), so every hidden scenario is valid.

The same key gives the same suite on any machine; without the key nobody can list it. The
scenario files are written, for the evaluator's use only, to a private temporary folder that a
sandboxed agent cannot see (the runner hides it with the key file), and the suite is named
``hidden``. The key itself never reaches a sandboxed agent: its environment is rebuilt from
scratch.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import hmac
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from pase_gym.errors import SuiteError
from pase_gym.scenarios import ScenarioSpec, parse_scenario
from pase_gym.sim.faults import FAMILIES, FAULTS, eligible_targets, faults_for_split
from pase_gym.sim.roles import PROFILES
from pase_gym.sim.state import new_state
from pase_gym.sim.topology import build_topology

HIDDEN = "hidden"
KEY_ENV = "PASE_GYM_HIDDEN_KEY"
KEY_FILE_ENV = "PASE_GYM_HIDDEN_KEY_FILE"
MIN_KEY_BYTES = 16
SCENARIOS = 24  # hidden scenarios in the suite
SEEDS = 3  # episodes per hidden scenario
MIN_NODES, MAX_NODES = 40, 400
MAX_DRAWS = 20  # redraws of a scenario whose fault has no target on its cloud


def key_file() -> Path | None:
    """The key file named by :data:`KEY_FILE_ENV`, if any."""
    path = os.environ.get(KEY_FILE_ENV)
    return Path(path).resolve() if path else None


def load_key() -> bytes:
    """The hidden split's key: :data:`KEY_ENV`, else the file :data:`KEY_FILE_ENV` names.

    Raises:
        SuiteError: no key, an unreadable key file, or a key shorter than 16 bytes.
    """
    raw = os.environ.get(KEY_ENV)
    if raw is None and key_file() is not None:
        try:
            raw = key_file().read_text(encoding="utf-8").strip()  # type: ignore[union-attr]
        except (OSError, UnicodeDecodeError) as exc:
            raise SuiteError(f"cannot read the hidden split's key file: {exc}") from None
    if raw is None:
        raise SuiteError(
            f"the hidden split needs its key: set {KEY_ENV}, or {KEY_FILE_ENV} to a file "
            "holding it (pase-bench run --hidden-key-file FILE); only whoever runs the board "
            "has it"
        )
    key = raw.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise SuiteError(f"the hidden split's key must have at least {MIN_KEY_BYTES} bytes")
    return key


def _rng(key: bytes, label: str) -> np.random.Generator:
    digest = hmac.new(key, label.encode("utf-8"), hashlib.sha256).digest()
    return np.random.default_rng(int.from_bytes(digest, "big"))


def draw_scenario(key: bytes, index: int) -> ScenarioSpec:
    """The ``index``-th hidden scenario of ``key`` (valid: its fault can strike its cloud).

    Raises:
        SuiteError: no valid draw in :data:`MAX_DRAWS` tries (not seen with the built-in
            fault types).
    """
    pool = sorted({*faults_for_split("test"), *faults_for_split("unseen")})
    for attempt in range(MAX_DRAWS):
        rng = _rng(key, f"scenario:{index}:{attempt}")
        fault = pool[int(rng.integers(len(pool)))]
        nodes = int(rng.integers(MIN_NODES, MAX_NODES + 1))
        layout = int(rng.integers(2**31 - 1))
        profile = sorted(PROFILES)[int(rng.integers(len(PROFILES)))]
        onset = int(rng.integers(15, 120))
        state = new_state(build_topology(nodes, layout), profile, np.random.default_rng(0))
        if eligible_targets(state, fault).size == 0:
            continue
        split = "unseen" if "unseen" in _splits(fault) else "test"
        return parse_scenario(
            {
                "name": f"hidden-{index:02d}",
                "description": "a hidden-split scenario (drawn from the board's key)",
                "split": split,
                "topology": {"nodes": nodes, "seed": layout},
                "workload": {
                    "profile": profile,
                    "intensity": round(float(rng.uniform(0.7, 1.2)), 2),
                },
                "faults": [{"type": fault, "onset": [onset, onset + 30]}],
                "budget": 600,
            },
            source=f"hidden-{index:02d}",
        )
    raise SuiteError(f"hidden scenario {index}: no valid draw in {MAX_DRAWS} tries")


def _splits(fault: str) -> tuple[str, ...]:
    return FAMILIES[FAULTS[fault].family].splits


@lru_cache(maxsize=4)
def _written(key: bytes, count: int) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="pase-hidden-"))
    folder.chmod(0o700)
    atexit.register(shutil.rmtree, folder, True)  # gone with the process that drew them
    for i in range(count):
        spec = draw_scenario(key, i)
        path = folder / f"{spec.name}.yaml"
        path.write_text(
            yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True)), encoding="utf-8"
        )
        path.chmod(0o600)
    return folder


def hidden_folder(count: int = SCENARIOS) -> Path:
    """The private folder holding the hidden scenarios' files (written once per process)."""
    key = load_key()
    return _written(key, count)


def hidden_paths() -> list[str]:
    """What a sandboxed agent must not see of the hidden split: the scenario folder and the
    key file (empty when no key is configured)."""
    paths = [str(key_file())] if key_file() is not None else []  # hidden even if unusable
    with contextlib.suppress(SuiteError):  # no usable key: no hidden scenarios to hide
        paths.append(str(hidden_folder()))
    return paths
