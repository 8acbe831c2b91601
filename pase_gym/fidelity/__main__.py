"""``python -m pase_gym.fidelity``: the sim-to-real report (see :mod:`pase_gym.fidelity.cli`)."""

from pase_gym.fidelity.cli import main

raise SystemExit(main())
