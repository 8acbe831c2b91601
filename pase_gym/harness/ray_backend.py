"""Episodes on a Ray cluster: ``pase-bench run --backend ray [--address ADDR]``.

Each episode is one Ray task running the same :func:`~pase_gym.harness.runner.run_episode` as
the local runner, so the records are identical whatever the number of workers or nodes (only
the wall-clock ``compute_s`` differs). Without ``--address`` a local cluster of ``workers`` CPUs
is started for the run and stopped after it; with one, the run joins that cluster (every node
needs the same pase-gym and agent files). A task whose worker dies is run again (Ray retries
it up to :data:`RETRIES` times) and its record is written once. Needs the ``ray`` extra.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pase_gym.errors import PaseGymError

logger = logging.getLogger(__name__)
RETRIES = 3


class RayBackendError(PaseGymError, RuntimeError):
    """Ray is not installed, or the cluster could not be reached."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayBackendError("the Ray backend needs ray: pip install 'pase-gym[ray]'") from None
    return ray


def ray_episodes(
    jobs: Sequence[Any],
    workers: int,
    address: str | None = None,
    run: Callable[[Any], Any] | None = None,
) -> Iterator[tuple[Any, Any]]:
    """Run ``run(job)`` for every job as a Ray task; yield ``(job, record)`` as each finishes.

    Args:
        jobs: the runner's jobs.
        workers: CPUs of the local cluster (ignored when joining one at ``address``).
        address: a running cluster to join, or ``None`` for a local one.
        run: the episode function (the runner passes
            :func:`~pase_gym.harness.runner.run_episode`).

    Raises:
        RayBackendError: ray is missing or the cluster at ``address`` cannot be joined.
    """
    ray = _ray()
    if run is None:
        raise RayBackendError("ray_episodes needs the episode function (run=run_episode)")
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(
                address=address,
                num_cpus=None if address else max(1, workers),
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        except Exception as exc:  # ray raises many kinds; the user needs one clear line
            raise RayBackendError(f"cannot start or join the Ray cluster: {exc}") from None
    try:
        task = ray.remote(max_retries=RETRIES, retry_exceptions=False)(run)
        pending = {task.remote(job): job for job in jobs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            job = pending.pop(ref)
            yield job, ray.get(ref)
    finally:
        if started:
            ray.shutdown()
