"""The agent's senses as text (its 7x7 view and what it carries): the public home of the
description the parser conditions on (defined with the task, whose training data uses it)."""

from landfall.tasks.command_parser.sensors import describe, visible_objects

__all__ = ["describe", "visible_objects"]
