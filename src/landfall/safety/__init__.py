"""Responsible-AI checks of trained runs: the audit gate (``audit``), counterfactual fairness,
behavioural tests, stereotype bias, privacy (PII), the harmful-content guard and token
attributions. Each check reaches a model only through ``landfall.inference``."""
