"""MaskablePPO on the tiny cloud: a reinforcement-learning baseline trained through the
Gymnasium API (``agents/maskable_ppo/train.py``; the ``rl`` extra)."""
