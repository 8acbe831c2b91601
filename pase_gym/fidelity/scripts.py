"""The design of the simulated experiments: the window, the workload scripts, the injection sites.

What one experiment of :mod:`pase_gym.fidelity.experiments` runs, as data: per campaign the
workload script (:data:`SCRIPTS`, steps of :class:`Phase` over the request chains of
:data:`pase_gym.sim.signals.EVENT_CHAINS`), the ticks its steps run at in the :data:`WINDOW`,
the classes it can assert on and the events it can emit. The replay env
(:mod:`pase_gym.env.replay_classes`) reads the same scripts to name a data-set row's class.

Injection sites are where the data set's campaigns injected: emulated software bugs (a thrown
exception, a wrong return value, a missing call, a crash or hang) in Nova, Cinder and Neutron
services. They map to the simulator's ``process`` family (``process_crash``, ``process_hang``)
and ``deploy`` family (``bad_deploy``: part of the requests fail; ``config_drift``: nearly all
fail) on the Nova, Cinder and Neutron roles (:data:`BUG_FAULTS`, :data:`BUG_ROLES`), plus the
site ``none``: a bug that was injected but never activated in the window.
"""

from __future__ import annotations

from dataclasses import dataclass

from pase_gym.datasets.campaigns import campaign_name
from pase_gym.errors import DatasetError
from pase_gym.sim.faults import FAULTS
from pase_gym.sim.roles import ROLE_INDEX
from pase_gym.sim.signals import EVENT_CHAINS, POLL_EVENTS

WINDOW = 240
"""Ticks (simulated seconds) one experiment runs: one pass of the campaign's workload script."""

SSH_STEP_NAME = "ssh"

BUG_FAULTS: tuple[str, ...] = ("process_crash", "process_hang", "bad_deploy", "config_drift")
"""Simulator fault types that stand for the data set's emulated software bugs."""

BUG_ROLES: tuple[str, ...] = (
    "nova-api",
    "nova-conductor",
    "nova-scheduler",
    "nova-compute",
    "cinder-api",
    "cinder-scheduler",
    "cinder-volume",
    "neutron-server",
    "dhcp-agent",
    "l3-agent",
    "ovs-agent",
)
"""The Nova, Cinder and Neutron services the data set's campaigns injected bugs into."""

NO_FAULT = "none"
"""The site of an experiment whose bug never activates within the window."""

SITES: tuple[str, ...] = (NO_FAULT, *(f"{f}@{r}" for f in BUG_FAULTS for r in BUG_ROLES))
"""Every injection site, ``<fault type>@<role>`` or ``none``."""


@dataclass(frozen=True)
class Phase:
    """One step of a campaign's workload script.

    Attributes:
        name: what the step does (``boot``, ``volume-attach``, ``ssh`` ...).
        chain: the request type in :data:`~pase_gym.sim.signals.EVENT_CHAINS` it issues, or
            ``None`` for the data-plane ``ssh`` check.
        start: first chain step the request walks.
        stop: one past its last chain step (``None``: to the end of the chain).
        failure_class: the class an experiment gets when this is its first failing step, or
            ``None`` when the campaign's workload did not assert on it.
        needs: the steps that must have completed for this one to run (it is skipped
            otherwise: there is nothing to attach a volume to, nobody to SSH into).
        teardown: the step runs whatever failed before (resource clean-up).
        cleans: for a teardown step, the steps whose resources it deletes: it runs when one of
            them was accepted by the API (the resource exists, even if the step failed later),
            and is skipped when none was (nothing to delete); empty: it always runs.
    """

    name: str
    chain: str | None
    start: int = 0
    stop: int | None = None
    failure_class: str | None = None
    needs: tuple[str, ...] = ()
    teardown: bool = False
    cleans: tuple[str, ...] = ()

    def steps(self) -> range:
        """Indices of the chain steps this phase walks."""
        if self.chain is None:
            return range(0)
        end = len(EVENT_CHAINS[self.chain]) if self.stop is None else self.stop
        return range(self.start, end)


SCRIPTS: dict[str, tuple[Phase, ...]] = {
    # the balanced workload: network, volume, an instance on the network with the volume
    # attached, SSH into it, clean-up
    "DEPL": (
        Phase("network", "network", failure_class="network_failure"),
        Phase("volume-create", "volume", 0, 3, "volume_failure"),
        Phase("boot", "boot", failure_class="instance_failure", needs=("network",)),
        Phase(
            "volume-attach", "volume", 3, None, "volume_failure", needs=("boot", "volume-create")
        ),
        Phase(SSH_STEP_NAME, None, failure_class="ssh_failure", needs=("boot",)),
        Phase("delete-server", "cleanup", 0, 2, "cleanup_failure", teardown=True, cleans=("boot",)),
        Phase(
            "delete-volume",
            "cleanup",
            2,
            4,
            "cleanup_failure",
            teardown=True,
            cleans=("volume-create",),
        ),
        Phase(
            "delete-network",
            "cleanup",
            4,
            None,
            "cleanup_failure",
            teardown=True,
            cleans=("network",),
        ),
    ),
    # Neutron resources, an instance on them, routers and ports, SSH; no volumes; the
    # instance's ports are the workload's own Neutron calls (they run whether Nova's part of
    # the boot worked or not, and a failure there is a network failure); the clean-up deletes
    # Neutron resources only and is not asserted on
    "NET": (
        Phase("network-create", "network", 0, 4, "network_failure"),
        Phase("boot", "boot", 0, 4, "instance_failure", needs=("network-create",)),
        Phase("boot-ports", "boot", 4, None, "network_failure", needs=("network-create",)),
        Phase("network-router", "network", 4, None, "network_failure", needs=("network-create",)),
        Phase(
            SSH_STEP_NAME,
            None,
            failure_class="ssh_failure",
            needs=("boot", "boot-ports", "network-router"),
        ),
        Phase("delete-network", "cleanup", 4, None, teardown=True, cleans=("network-create",)),
    ),
    # Cinder volumes, an instance booted with them, attachments, clean-up; no network
    # creation, no SSH, no router deletion
    "STO": (
        Phase("volume-create", "volume", 0, 3, "volume_failure"),
        Phase("boot", "boot", failure_class="instance_failure", needs=("volume-create",)),
        Phase(
            "volume-attach", "volume", 3, None, "volume_failure", needs=("boot", "volume-create")
        ),
        Phase("delete-server", "cleanup", 0, 2, "cleanup_failure", teardown=True, cleans=("boot",)),
        Phase(
            "delete-volume",
            "cleanup",
            2,
            4,
            "cleanup_failure",
            teardown=True,
            cleans=("volume-create",),
        ),
        Phase("delete-ports", "cleanup", 4, 5, "cleanup_failure", teardown=True, cleans=("boot",)),
    ),
}
"""Per campaign, the workload script: its steps in order (see ``docs/fidelity.md``).

A script issues the request types whose events the campaign's tracer recorded and asserts on
the classes the campaign's labels name (NET has no Cinder events and no volume or clean-up
class; STO has no network-creation events and no network or SSH class); its clean-up deletes
what that workload creates (NET: Neutron resources only; STO: no routers), one deletion per
resource, each only when the step that created the resource was accepted by the API (there is
nothing to delete otherwise; a failed deletion does not stop the next). A chain step whose
event the campaign did not record (STO: ``q-plugin_get_ports``,
``compute_reserve_block_device_name``, ``compute_attach_volume``) still runs and can still
fail, but leaves no trace in the row. The order of the steps and what each needs follow the
order of operations visible in the data set's rows (which events are still present when a
given class occurred): a failed step skips the steps that need it, and the class is that of
the first step that failed."""


# The workload client's status polls (:data:`pase_gym.sim.signals.POLL_EVENTS`): here it polls
# the servers and volumes it holds while every step runs (until they are ready, or until its
# timeout when a step fails), so these events can come from any step of the script, not only
# from the request chain that lists them.


CLIENT_CALLS: dict[str, frozenset[str]] = {
    "volume-attach": frozenset({"cinderclient_POST_202"}),
    "delete-volume": frozenset({"cinderclient_POST_202"}),
}
"""Calls the workload client makes in a step beyond its request chain's first step: attaching
and detaching a volume are Cinder volume actions (``POST /volumes/{id}/action``: reserve,
attach; begin-detaching, terminate-connection, detach), each a ``cinderclient_POST_202``."""


def step_events(campaign: str) -> tuple[frozenset[str], ...]:
    """Per step of the campaign's script, the events it can leave in the trace: its chain
    steps' events and their error variants, its client's own calls (:data:`CLIENT_CALLS`)
    and the status polls (:data:`POLL_EVENTS`)."""
    return tuple(
        frozenset(_chain_events(phase)) | POLL_EVENTS | CLIENT_CALLS.get(phase.name, frozenset())
        for phase in SCRIPTS[campaign_name(campaign)]
    )


def phase_ticks(campaign: str) -> tuple[int, ...]:
    """Ticks at which the script's steps run: evenly spread over the window."""
    n = len(SCRIPTS[campaign_name(campaign)])
    return tuple(round((i + 1) * WINDOW / (n + 1)) for i in range(n))


def campaign_classes(campaign: str) -> tuple[str, ...]:
    """The classes a simulated experiment of ``campaign`` can get (script order, then none)."""
    out: list[str] = []
    for phase in SCRIPTS[campaign_name(campaign)]:
        if phase.failure_class and phase.failure_class not in out:
            out.append(phase.failure_class)
    return (*out, "no_failure")


def _chain_events(phase: Phase) -> list[str]:
    """The events of the chain steps ``phase`` walks and their error variants, in order."""
    if phase.chain is None:
        return []
    chain = EVENT_CHAINS[phase.chain]
    names: list[str] = []
    for k in phase.steps():
        event, _role, _per, error = chain[k]
        names += [item for item in (event, error) if item and item not in names]
    return names


def script_events(campaign: str) -> tuple[str, ...]:
    """Event names the campaign's script can emit (completed steps and their error variants)."""
    names: list[str] = []
    for phase in SCRIPTS[campaign_name(campaign)]:
        names += [e for e in _chain_events(phase) if e not in names]
    return tuple(names)


def check_site(site: str) -> tuple[str, str] | None:
    """``(fault type, role)`` of an injection site, or ``None`` for :data:`NO_FAULT`.

    Raises:
        DatasetError: ``site`` is neither ``<fault type>@<role>`` nor ``none``.
    """
    if site == NO_FAULT:
        return None
    fault, sep, role = site.partition("@")
    if not sep or fault not in FAULTS or role not in ROLE_INDEX:
        raise DatasetError(
            f"expected an injection site '<fault type>@<role>' or {NO_FAULT!r}, found {site!r}"
        )
    return fault, role


def is_error_event(name: str) -> bool:
    """Whether an event name marks an error (``_ERROR`` RPCs, HTTP 4xx/5xx answers)."""
    if name.endswith("_ERROR"):
        return True
    tail = name.rsplit("_", 1)[-1]
    return tail.isdecimal() and int(tail) >= 400
