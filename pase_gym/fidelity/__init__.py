"""Experiments on the simulator against Failure-Dataset-OpenStack: how real does it look?

- :mod:`~pase_gym.fidelity.scripts`: the campaigns' workload scripts, the window and the
  injection sites, as data;
- :mod:`~pase_gym.fidelity.experiments`: simulated experiments shaped like the data set's rows
  (one pass of a campaign's workload script on the ``tiny`` cloud with one fault);
- :mod:`~pase_gym.fidelity.calibration`: the calibration fitted on the data set's train side
  (shipped as ``calibration.json``) and the split it was fitted on;
- :mod:`~pase_gym.fidelity.fitting`: fitting it (``python -m pase_gym.fidelity.calibrate``
  refits it);
- :mod:`~pase_gym.fidelity.rows`: experiments as rows over the data set's columns, native or
  calibrated;
- :mod:`~pase_gym.fidelity.classifier`: the report's classifier and the real-vs-simulated
  discriminator (scikit-learn);
- :mod:`~pase_gym.fidelity.report`: the sim-to-real experiment, every number of the report;
- :mod:`~pase_gym.fidelity.render`: its Markdown, figure and files;
- :mod:`~pase_gym.fidelity.cli`: ``python -m pase_gym.fidelity --out benchmarks/fidelity/``.

The scores come from :mod:`pase_gym.stats`; the data set is read by :mod:`pase_gym.datasets`.
``docs/fidelity.md`` explains the design and what is fitted.
"""
