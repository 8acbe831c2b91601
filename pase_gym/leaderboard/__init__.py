"""The leaderboard: submissions (a folder with the agent and its manifest), their checks, and
(to come) the board built from verified results.

* :mod:`~pase_gym.leaderboard.manifest`: the manifest schema and ``validate_submission``,
  run by ``pase-bench submit validate DIR`` before anything long starts.
"""
