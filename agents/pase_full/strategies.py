"""Meta-prompt strategies compared in Fig. 3: other ways to choose the prompt embedding.

Each is a drop-in for :class:`mpo.MetaPromptOptimiser` in the loop (``Agent.use``): the same
``act(obs, rng=None)``, ``add(obs, action, reward)``, ``update(steps)``, ``transitions`` and
``prompt_embedding(action)``, the same action space ([-1, 1]^16, ``p = SCALE a``) and the same
reward (eq. 7). ``update`` is called once after each episode (``steps`` = the loop's
``UPDATES_PER_EPISODE``); ``seconds`` adds up the time spent learning.

- ``sac``: the shipped optimiser (:class:`mpo.MetaPromptOptimiser`, warm-started from
  ``mpo.zip``).
- ``ppo``: stable-baselines3's :class:`~stable_baselines3.PPO` (a Gaussian policy over the
  same observation, its actions clipped to the box), one update per ``ROLLOUT`` transitions.
- ``reinforce``: a Gaussian policy (linear mean over the observation, learned log-std),
  the plain policy gradient against a running-mean baseline, Adam.
- ``random_search``: a fresh uniform prompt each episode while exploring; acts with the best
  prompt seen so far (by its mean reward).
- ``es``: a (1+1) evolution strategy over one prompt for every incident: the child
  ``parent + sigma N(0, I)`` replaces the parent when its reward is at least the parent's;
  ``sigma`` follows the 1/5 success rule.
- ``gradient``: simultaneous-perturbation gradient ascent (SPSA) over one prompt: two episodes
  at ``a + c d`` and ``a - c d`` (``d`` random signs), then
  ``a += lr (r+ - r-) / (2 c) d``.
- ``lora``: adapter tuning instead of prompt tuning: no prompt embedding (the engine's own
  prompt); a fresh rank-4 LoRA on the engine's attention projections (``q_proj``,
  ``v_proj``, zero at the start, so the first plans are the untuned engine's) learns from
  eq. 7's reward by the policy gradient of the plans it executed: after each episode one Adam
  step on ``-(R - b) log pi(plan)``, where ``log pi`` is the plan's log-probability under the
  grammar-constrained sampler at the loop's temperature (tokens the grammar forces count 0)
  and ``b`` a running mean of the rewards. It needs the engine: :meth:`LoraTuning.attach`.

The three context-free strategies (``random_search``, ``es``, ``gradient``) ignore the
observation: one prompt for every incident, as a prompt found by search would be used.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pase_gym.harness.agent import sibling

HERE = Path(__file__).resolve().parent
mpo = sibling(HERE, "mpo")
ACTION_DIM, OBS_DIM = mpo.ACTION_DIM, mpo.OBS_DIM
ROLLOUT = 8


class _Base:
    """What every strategy shares: the transitions count, the time spent learning."""

    name = "base"

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self.rng = np.random.default_rng([self.seed, 0xF163])
        self.count = 0
        self.seconds = 0.0

    @property
    def transitions(self) -> int:
        return self.count

    @staticmethod
    def prompt_embedding(action: np.ndarray) -> np.ndarray:
        return mpo.MetaPromptOptimiser.prompt_embedding(action)

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float) -> None:
        self.count += 1
        self._add(np.asarray(obs, np.float32), np.asarray(action, np.float32), float(reward))

    def update(self, steps: int) -> None:
        start = time.perf_counter()
        self._update(steps)
        self.seconds += time.perf_counter() - start

    def _add(self, obs: np.ndarray, action: np.ndarray, reward: float) -> None:
        raise NotImplementedError

    def _update(self, steps: int) -> None:
        raise NotImplementedError


class Sac(_Base):
    """The shipped SAC optimiser, timed like the others."""

    name = "sac"

    def __init__(self, inner: Any) -> None:
        super().__init__(inner.seed)
        self.inner = inner

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return self.inner.act(obs, rng)

    def _add(self, obs: np.ndarray, action: np.ndarray, reward: float) -> None:
        self.inner.add(obs, action, reward)

    def _update(self, steps: int) -> None:
        self.inner.update(steps)


class Ppo(_Base):
    """SB3 PPO driven one transition at a time (one-step episodes)."""

    name = "ppo"

    def __init__(self, seed: int = 0, learning_rate: float = 3e-3) -> None:
        super().__init__(seed)
        import torch
        from stable_baselines3 import PPO
        from stable_baselines3.common.logger import configure

        with torch.random.fork_rng(devices=[]):
            self.ppo = PPO(
                "MlpPolicy",
                mpo._spaces_env(),
                learning_rate=learning_rate,
                n_steps=ROLLOUT,
                batch_size=ROLLOUT,
                n_epochs=4,
                gamma=0.0,
                gae_lambda=1.0,
                policy_kwargs={"net_arch": [64, 64]},
                seed=self.seed,
                device="cpu",
            )
        self.ppo.set_logger(configure(None, []))
        self.pending: list[tuple[np.ndarray, np.ndarray, float]] = []

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        import torch

        with torch.no_grad():
            dist = self.ppo.policy.get_distribution(torch.as_tensor(obs[None]))
            mean = dist.distribution.mean.numpy()[0]
            std = dist.distribution.stddev.numpy()[0]
        a = mean if rng is None else mean + std * rng.standard_normal(ACTION_DIM)
        return np.clip(a, -1.0, 1.0).astype(np.float32)

    def _add(self, obs: np.ndarray, action: np.ndarray, reward: float) -> None:
        self.pending.append((obs, action, reward))

    def _update(self, steps: int) -> None:
        import torch

        while len(self.pending) >= ROLLOUT:
            batch, self.pending = self.pending[:ROLLOUT], self.pending[ROLLOUT:]
            buf = self.ppo.rollout_buffer
            buf.reset()
            for obs, action, reward in batch:
                o = torch.as_tensor(obs[None])
                with torch.no_grad():
                    value, log_prob, _ = self.ppo.policy.evaluate_actions(
                        o, torch.as_tensor(action[None])
                    )
                buf.add(
                    obs[None],
                    action[None],
                    np.array([reward]),
                    np.array([True]),
                    value.flatten(),
                    log_prob,
                )
            buf.compute_returns_and_advantage(torch.zeros(1), np.array([True]))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed * 7919 + self.count)
                self.ppo.train()


class Reinforce(_Base):
    """A Gaussian policy trained by the plain policy gradient with a running baseline."""

    name = "reinforce"

    def __init__(self, seed: int = 0, learning_rate: float = 1e-2) -> None:
        super().__init__(seed)
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.mean = torch.nn.Linear(OBS_DIM, ACTION_DIM)
            torch.nn.init.zeros_(self.mean.weight)
            torch.nn.init.zeros_(self.mean.bias)
        self.log_std = torch.nn.Parameter(torch.full((ACTION_DIM,), -0.5))
        self.opt = torch.optim.Adam([*self.mean.parameters(), self.log_std], lr=learning_rate)
        self.baseline: float | None = None
        self.batch: list[tuple[np.ndarray, np.ndarray, float]] = []

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        import torch

        with torch.no_grad():
            mu = self.mean(torch.as_tensor(obs[None])).numpy()[0]
            std = self.log_std.exp().numpy()
        a = mu if rng is None else mu + std * rng.standard_normal(ACTION_DIM)
        return np.clip(a, -1.0, 1.0).astype(np.float32)

    def _add(self, obs: np.ndarray, action: np.ndarray, reward: float) -> None:
        self.batch.append((obs, action, reward))

    def _update(self, steps: int) -> None:
        import torch

        if not self.batch:
            return
        rewards = np.array([r for _, _, r in self.batch])
        base = float(rewards.mean()) if self.baseline is None else self.baseline
        obs = torch.as_tensor(np.stack([o for o, _, _ in self.batch]))
        act = torch.as_tensor(np.stack([a for _, a, _ in self.batch]))
        adv = torch.as_tensor(rewards - base, dtype=torch.float32)
        dist = torch.distributions.Normal(self.mean(obs), self.log_std.exp())
        loss = -(dist.log_prob(act).sum(-1) * adv).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.baseline = 0.8 * base + 0.2 * float(rewards.mean())
        self.batch = []


class RandomSearch(_Base):
    """Random prompts while exploring; the best one seen otherwise."""

    name = "random_search"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.best: tuple[float, np.ndarray] = (-np.inf, np.zeros(ACTION_DIM, np.float32))
        self.trial: np.ndarray | None = None
        self.rewards: list[float] = []

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        if rng is None:
            return self.best[1]
        if self.trial is None:
            self.trial = self.rng.uniform(-1, 1, ACTION_DIM).astype(np.float32)
        return self.trial

    def _add(self, obs: np.ndarray, action: np.ndarray, reward: float) -> None:
        self.rewards.append(reward)

    def _update(self, steps: int) -> None:
        if self.trial is not None and self.rewards:
            score = float(np.mean(self.rewards))
            if score > self.best[0]:
                self.best = (score, self.trial)
        self.trial, self.rewards = None, []


class OnePlusOneEs(_Base):
    """(1+1)-ES over one prompt, the 1/5 success rule on its step size."""

    name = "es"

    def __init__(self, seed: int = 0, sigma: float = 0.3) -> None:
        super().__init__(seed)
        self.parent = np.zeros(ACTION_DIM, np.float32)
        self.parent_score: float | None = None
        self.sigma = sigma
        self.child: np.ndarray | None = None
        self.rewards: list[float] = []

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        if rng is None:
            return self.parent
        if self.parent_score is None:
            return self.parent  # the parent is scored first
        if self.child is None:
            step = self.sigma * self.rng.standard_normal(ACTION_DIM)
            self.child = np.clip(self.parent + step, -1, 1).astype(np.float32)
        return self.child

    def _add(self, obs: np.ndarray, action: np.ndarray, reward: float) -> None:
        self.rewards.append(reward)

    def _update(self, steps: int) -> None:
        if self.rewards:
            score = float(np.mean(self.rewards))
            if self.parent_score is None:
                self.parent_score = score
            elif self.child is not None:
                success = score >= self.parent_score
                if success:
                    self.parent, self.parent_score = self.child, score
                self.sigma *= np.exp((float(success) - 0.2) / 0.8 / 4)
        self.child, self.rewards = None, []


class Spsa(_Base):
    """Simultaneous-perturbation gradient ascent over one prompt."""

    name = "gradient"

    def __init__(self, seed: int = 0, c: float = 0.3, lr: float = 0.1) -> None:
        super().__init__(seed)
        self.a = np.zeros(ACTION_DIM, np.float32)
        self.c, self.lr = c, lr
        self.delta: np.ndarray | None = None
        self.sign = 1
        self.plus: float | None = None
        self.rewards: list[float] = []

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        if rng is None:
            return self.a
        if self.delta is None:
            self.delta = self.rng.choice([-1.0, 1.0], ACTION_DIM).astype(np.float32)
        return np.clip(self.a + self.sign * self.c * self.delta, -1, 1).astype(np.float32)

    def _add(self, obs: np.ndarray, action: np.ndarray, reward: float) -> None:
        self.rewards.append(reward)

    def _update(self, steps: int) -> None:
        if not self.rewards or self.delta is None:
            self.rewards = []
            return
        score = float(np.mean(self.rewards))
        self.rewards = []
        if self.sign == 1:
            self.plus, self.sign = score, -1
            return
        assert self.plus is not None
        g = (self.plus - score) / (2 * self.c) * self.delta
        self.a = np.clip(self.a + self.lr * g, -1, 1).astype(np.float32)
        self.delta, self.sign, self.plus = None, 1, None


class LoraTuning(_Base):
    """Adapter tuning: a fresh LoRA on the engine learns by the policy gradient of its plans.

    Args:
        seed: seeds the adapter's initialisation.
        learning_rate: Adam's step size.
        temperature: the sampler temperature the plans' log-probabilities are taken at (the
            loop's ``TEMPERATURE``).
        rank: the adapter's rank.
    """

    name = "lora"
    TARGETS = ("q_proj", "v_proj")

    def __init__(
        self, seed: int = 0, learning_rate: float = 5e-4, temperature: float = 0.7, rank: int = 4
    ) -> None:
        super().__init__(seed)
        self.learning_rate = learning_rate
        self.temperature = temperature
        self.rank = rank
        self.engine: Any = None
        self.peft: Any = None
        self.opt: Any = None
        self.baseline: float | None = None
        self.batch: list[tuple[Any, tuple[int, ...], float]] = []

    # -- the adapter ----------------------------------------------------------------------

    def attach(self, engine: Any) -> None:
        """Put a fresh adapter on ``engine``'s model (in place: the engine keeps decoding
        through the same model object, now with the adapter)."""
        import torch
        from peft import LoraConfig, get_peft_model

        if self.peft is not None:
            raise ValueError("this LoRA strategy is already attached to an engine")
        config = LoraConfig(
            r=self.rank,
            lora_alpha=2 * self.rank,
            lora_dropout=0.0,
            target_modules=list(self.TARGETS),
            bias="none",
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.peft = get_peft_model(engine.model, config)
        self.peft.eval()  # no dropout; gradients flow all the same
        params = [p for p in self.peft.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(params, lr=self.learning_rate)
        self.engine = engine
        engine.clear_prefix_cache()

    def detach(self) -> None:
        """Take the adapter off the engine's model (what it learned is dropped)."""
        if self.peft is not None:
            self.peft.unload()
            self.engine.clear_prefix_cache()
        self.peft = self.engine = self.opt = None

    # -- the strategy interface -----------------------------------------------------------

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return np.zeros(ACTION_DIM, np.float32)

    @staticmethod
    def prompt_embedding(action: np.ndarray) -> None:  # type: ignore[override]
        """No prompt embedding: the engine's own prompt (the adapter does the adapting)."""
        return None

    def _add(self, obs: np.ndarray, action: np.ndarray, reward: float) -> None:
        pass  # the plan's tokens come through add_generation

    def add_generation(self, incident: Any, tokens: Sequence[int], reward: float) -> None:
        """One executed plan: the incident it was written for, its token ids, its reward."""
        if tokens:
            self.batch.append((incident, tuple(int(t) for t in tokens), float(reward)))

    def log_prob(self, incident: Any, tokens: Sequence[int]) -> Any:
        """``log pi(plan)`` under the constrained sampler, differentiable in the adapter."""
        import torch

        engine = self.engine
        ids, _ = engine.prompts.encode([incident])
        plan = torch.tensor([list(tokens)], dtype=ids.dtype, device=ids.device)
        logits = engine.model(input_ids=torch.cat([ids, plan], dim=1)).logits[0]
        start = ids.shape[1] - 1
        con = engine.constraint(incident)
        state = con.recognizer.initial()
        total = logits.new_zeros(())
        for k, token in enumerate(tokens):
            allowed = con.allowed(state)
            if len(allowed) > 1:
                index = torch.tensor(allowed, device=logits.device)
                scores = logits[start + k].index_select(0, index).float() / self.temperature
                total = total + torch.log_softmax(scores, 0)[allowed.index(token)]
            state = con.advance(state, token)
        return total

    def _update(self, steps: int) -> None:
        import torch

        batch, self.batch = self.batch, []
        if not batch or self.peft is None:
            return
        rewards = np.array([r for _, _, r in batch])
        base = float(rewards.mean()) if self.baseline is None else self.baseline
        self.opt.zero_grad()
        with torch.enable_grad():
            loss = sum(
                -(r - base) * self.log_prob(incident, tokens) for incident, tokens, r in batch
            )
            (loss / len(batch)).backward()
        self.opt.step()
        self.engine.clear_prefix_cache()
        self.baseline = 0.8 * base + 0.2 * float(rewards.mean())


STRATEGIES = ("sac", "ppo", "reinforce", "random_search", "es", "gradient", "lora")


def build(name: str, shipped: Any, seed: int = 0) -> Any:
    """The strategy ``name`` (``shipped``: the loaded SAC optimiser, for ``sac``)."""
    makers = {
        "sac": lambda: Sac(shipped),
        "ppo": lambda: Ppo(seed),
        "reinforce": lambda: Reinforce(seed),
        "random_search": lambda: RandomSearch(seed),
        "es": lambda: OnePlusOneEs(seed),
        "gradient": lambda: Spsa(seed),
        "lora": lambda: LoraTuning(seed),
    }
    if name not in makers:
        raise ValueError(f"unknown strategy {name!r}: expected one of {', '.join(STRATEGIES)}")
    return makers[name]()
