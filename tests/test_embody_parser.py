"""The command parser as a task plugin: trained through ``landfall.train`` (a tiny random
BERT, a few BabyAI worlds), loaded back, and put in a body by ``landfall.embody_run``."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("minigrid")

import landfall  # noqa: E402
from landfall.config import build_config  # noqa: E402
from landfall.errors import ConfigError  # noqa: E402


def _raw(tiny_model, **parser):
    return {"task": {"name": "command_parser"}, "model": {"name": str(tiny_model)},
            "data": {"max_length": 48},
            "command_parser": {"levels": "BabyAI-GoToLocal-v0,BabyAI-PutNextLocal-v0",
                               "episodes": 6, "validation_episodes": 4, "sensors": True,
                               **parser},
            "train": {"max_steps": 3, "batch_size": 8, "eval_every": 3, "lr": 1e-3,
                      "threads": 1},
            "report": {"baseline": False, "plots": False}}


def test_parser_trains_through_the_one_entry_point_and_commands_a_body(tiny_model, tmp_path):
    out = landfall.train(build_config(_raw(tiny_model)), tmp_path / "parser")
    assert 0.0 <= out["validation"]["exact_match"] <= 1.0
    assert out["data"]["train"] >= 6 and out["train"]["steps"] == 3
    saved = (tmp_path / "parser" / "landfall.toml").read_text()
    assert 'name = "command_parser"' in saved and "[command_parser]" in saved
    assert (tmp_path / "parser" / "model" / "model.safetensors").exists()

    from landfall.tasks.command_parser.model import load_parser

    parser = load_parser(tmp_path / "parser")
    result = parser.parse("go to the red ball", "you see red ball 2 ahead; you carry nothing")
    assert len(result.tags) == 5 and (result.plan is not None or result.error)
    gif = tmp_path / "go.gif"
    run = landfall.embody_run(str(tmp_path / "parser"), level="BabyAI-GoToLocal-v0",
                              command="go to the red ball", seed=1, gif=gif)
    assert gif.exists() and run["plan"] == (result.plan.surface() if run["plan"] else "")
    if run["refused"]:  # an untrained parser may not understand; it must then not move
        assert run["steps"] == 0 and run["refusal"]
    ev = landfall.embody_eval(str(tmp_path / "parser"), output=tmp_path / "ev",
                              levels="BabyAI-GoToLocal-v0", episodes=2)
    assert json.loads((tmp_path / "ev" / "eval.json").read_text())["episodes"] == 2
    assert 0.0 <= ev["success_rate"] <= 1.0


def test_training_seeds_must_stay_clear_of_evaluation_seeds(tiny_model, tmp_path):
    with pytest.raises(ConfigError, match="training seeds must stay below"):
        landfall.train(build_config(_raw(tiny_model, seed=899_999, episodes=5)),
                       tmp_path / "bad")
    with pytest.raises(ConfigError, match=r"command_parser.episodes: must be >= 1"):
        build_config(_raw(tiny_model), ["command_parser.episodes=0"])


def test_smollm2_rewrites_are_kept_only_when_they_tag_back_to_the_missions_tree():
    from landfall.tasks.command_parser.grammar import Act, Obj, Seq
    from landfall.tasks.command_parser.lexicon import decode, words_of
    from landfall.tasks.command_parser.rewrites import LexiconTagger

    tagger = LexiconTagger()
    box = Obj("box", "yellow", None, "the")
    plan = Seq("before", Act("goto", box), Act("pickup", box))
    words = words_of("Hey, walk over to the golden crate and then pick it up!")
    tags = tagger.tag(words, plan)
    assert decode(words, tags).key() == plan.key()
    tagged = dict(zip(words, tags, strict=True))
    assert tagged["over"] == "O" and tagged["and"] == "O"  # filler, not "next to" / "and"
    assert tagged["golden"] == "C-yellow" and tagged["crate"] == "T-box"
    # a rewrite that changed the meaning (another colour, a lost step) is dropped
    assert tagger.tag(words_of("walk over to the red crate and then pick it up"), plan) is None
    assert tagger.tag(words_of("walk over to the golden crate"), plan) is None
    # words no lexicon of ours knows: dropped, not guessed
    assert tagger.tag(words_of("saunter yonder unto the golden crate, then nab it"), plan) is None


def test_rewrites_go_through_training_and_are_counted(tiny_model, tiny_lm, tmp_path):
    out = landfall.train(build_config(_raw(tiny_model, rewrites=4,
                                           rewrite_model=str(tiny_lm))), tmp_path / "p")
    counts = out["data"]["rewrites"]
    assert counts["asked"] == 4 and counts["generated_now"] == 4
    assert counts["kept"] + counts["unusable"] + counts["other_tree_or_unknown_words"] == 4
    assert out["data"]["train_styles"].get("smollm2", 0) == counts["kept"]
