"""Where Failure-Dataset-OpenStack is: the one place that decides which folder is read.

The data set is GPL-3.0 and is not shipped with pase-gym. :func:`find_data_root` takes the
first of:

1. the folder passed as ``root`` (every loader and the replay env take one);
2. the environment variable ``$PASE_GYM_OPENSTACK_DATA``;
3. ``../shared/data/failure-dataset-openstack`` relative to the **current working
   directory**, the layout of a checkout with the shared data folder beside it (run from the
   checkout's root, as CI and ``pytest`` do).

Nothing is looked up relative to where pase-gym itself is installed: an installed package has
no checkout around it. An explicit folder or environment variable is never second-guessed: if
it names no folder, that is an error, not a reason to look elsewhere.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pase_gym.errors import DatasetError

logger = logging.getLogger(__name__)

ENV_VAR = "PASE_GYM_OPENSTACK_DATA"
"""Environment variable naming the data set's folder (the one holding DEPL/, NET/, STO/)."""

DEFAULT_RELATIVE_ROOT = Path("..") / "shared" / "data" / "failure-dataset-openstack"
"""Where the data set is looked for last, relative to the current working directory."""

ORIGIN = (
    "Failure-Dataset-OpenStack is not shipped with pase-gym (it is GPL-3.0). It comes from "
    "https://github.com/dessertlab/Failure-Dataset-OpenStack (Cotroneo, De Simone, Liguori, "
    "Natella, 'Enhancing the analysis of software failures in cloud computing systems with deep "
    "learning', Journal of Systems and Software 181, 2021). Clone or copy it and point pase-gym "
    f"to the folder holding DEPL/, NET/ and STO/ with root=... or the environment variable "
    f"{ENV_VAR}."
)
"""Where the data set comes from and how to point to it (part of the not-found error)."""


def default_root() -> Path:
    """The folder looked in when neither ``root`` nor ``$PASE_GYM_OPENSTACK_DATA`` is given.

    Returns:
        ``../shared/data/failure-dataset-openstack`` below the current working directory
        (not resolved; it need not exist).
    """
    return Path.cwd() / DEFAULT_RELATIVE_ROOT


def find_data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder of Failure-Dataset-OpenStack (the one holding DEPL/, NET/, STO/).

    The first of these wins: ``root`` when given; the environment variable
    ``PASE_GYM_OPENSTACK_DATA`` when set; ``../shared/data/failure-dataset-openstack``
    relative to the current working directory (:func:`default_root`). An explicit ``root`` or
    environment variable is never second-guessed: if it does not name a folder, that is an
    error.

    Args:
        root: the data set's folder, or ``None`` to look for it.

    Returns:
        The resolved folder (its contents are checked when a campaign is loaded).

    Raises:
        DatasetError: no folder was found; the message says where it looked, where the data
            set comes from and how to point pase-gym to it.
    """
    if root is not None:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise DatasetError(
                f"expected the data set's folder here, found none. {ORIGIN}", path=path
            )
        return path.resolve()
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DatasetError(
                f"expected the data set's folder here (from ${ENV_VAR}), found none. {ORIGIN}",
                path=path,
            )
        return path.resolve()
    path = default_root()
    if path.is_dir():
        logger.debug("Failure-Dataset-OpenStack found below the working directory: %s", path)
        return path.resolve()
    raise DatasetError(
        f"Failure-Dataset-OpenStack not found; looked in {path.resolve()} "
        f"({DEFAULT_RELATIVE_ROOT} relative to the working directory {Path.cwd()}; "
        f"${ENV_VAR} is not set). {ORIGIN}"
    )
