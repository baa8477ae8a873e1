"""Embodiment: a parsed command grounded in a BabyAI world, checked by a shield, executed by
BabyAI's own bot (an oracle planner driven by our instruction tree), judged by the world.

``world`` (grounding), ``shield`` (what is refused, and why), ``sensors`` (the view as
text), ``execute`` (the bot, frames), ``render`` (PNG/GIF), ``session`` (one command end to
end), ``evaluate`` (success rates), ``interactive`` (a terminal loop).
"""
