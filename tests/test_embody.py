"""Embodiment: grounding, each shield rule, sensors as text, and commands end to end in real
BabyAI worlds (minigrid), executed by BabyAI's bot from our own instruction trees."""

from __future__ import annotations

import json
import random

import pytest

pytest.importorskip("minigrid")

import landfall  # noqa: E402
from landfall.baseline.babyai_rules import RuleParser  # noqa: E402
from landfall.embody.session import Session  # noqa: E402
from landfall.embody.shield import Shield, parse_policy, parse_rule  # noqa: E402
from landfall.embody.world import make_env, reset  # noqa: E402
from landfall.errors import ConfigError  # noqa: E402
from landfall.tasks.command_parser.data import Renderer, generate  # noqa: E402
from landfall.tasks.command_parser.grammar import Act, Obj, Seq, from_instr  # noqa: E402
from landfall.tasks.command_parser.lexicon import decode  # noqa: E402

LEVELS = ["BabyAI-GoToLocal-v0", "BabyAI-PickupLoc-v0", "BabyAI-PutNextLocal-v0",
          "BabyAI-SynthLoc-v0", "BabyAI-BossLevel-v0"]


def objects(env):
    return [c for c in env.unwrapped.grid.grid if c is not None and c.type in
            ("ball", "box", "key", "door")]


def find_seed(level, cond, start=0, limit=300):
    env = make_env(level)
    for seed in range(start, start + limit):
        reset(env, seed)
        if cond(env):
            return seed
    pytest.skip(f"no seed of {level} in range fits")


def pose(session):
    u = session.env.unwrapped
    return (tuple(int(x) for x in u.agent_pos), int(u.agent_dir), u.step_count, u.carrying)


def test_trees_round_trip_through_babyai_own_wording():
    for level in LEVELS:
        env = make_env(level)
        for seed in range(8):
            reset(env, seed)
            plan = from_instr(env.unwrapped.instrs)
            assert plan.surface() == env.unwrapped.mission
            parsed = RuleParser().parse(env.unwrapped.mission).plan
            assert parsed is not None and parsed.key() == plan.key()


def test_generated_paraphrases_decode_back_to_their_trees_and_hold_out_splits():
    ex = generate(["BabyAI-PutNextLocal-v0", "BabyAI-BossLevel-v0"], range(30),
                  rng=random.Random(0), paraphrases=2, synthetic=1,
                  exclude_pairs={("red", "ball")}, exclude_composition=True)
    assert {e.style for e in ex} == {"babyai", "paraphrase", "synthetic"}
    for e in ex:
        assert decode(e.words, e.tags).key() == e.plan.key(), " ".join(e.words)
        assert not any((o.color, o.type) == ("red", "ball") for o in e.plan.objects())
        assert not (isinstance(e.plan, Seq) and e.plan.kind != "and"
                    and isinstance(e.plan.a, Seq) and isinstance(e.plan.b, Seq))
    # paraphrases differ from BabyAI's wording
    assert sum(e.style == "paraphrase" and " ".join(e.words) != e.plan.surface().replace(
        ",", " ,") for e in ex) > 20


def test_decoder_handles_people_s_structures():
    r = Renderer(random.Random(0))
    plan = Seq("after", Act("goto", Obj("ball", "red", None, "the")),
               Act("open", Obj("door", None, "left", "a")))
    words = "after you open a door on your left , walk to the red ball".split()
    tags = ["J-pre-after", "O", "V-open", "D-a", "T-door", "O", "O", "L-left", "SEP",
            "V-goto", "O", "D-the", "C-red", "T-ball"]
    assert decode(words, tags) == plan
    # "go to the red door and open it": the pronoun names the same object
    it = decode("go to the red door and open it".split(),
                ["V-goto", "O", "D-the", "C-red", "T-door", "J-and", "V-open", "IT"])
    assert it == Seq("and", Act("goto", Obj("door", "red", None, "the")),
                     Act("open", Obj("door", "red", None, "the")))
    assert r.babyai(plan)[0] == plan.surface().replace(",", " ,").split()


def test_policy_rules_parse_from_plain_words():
    assert parse_rule("never pick up keys").action == "pickup"
    rule = parse_rule("never open red doors")
    assert (rule.action, rule.color, rule.type) == ("open", "red", "door")
    assert parse_rule("avoid cell 3,4").cell == (3, 4)
    assert len(parse_policy("never pick up keys; never open red doors")) == 2
    with pytest.raises(ConfigError, match="names no colour, type or cell"):
        parse_rule("never be rude")


def _refused(level, seed, command, kind, policy=""):
    s = Session(RuleParser(), level, seed, Shield(parse_policy(policy)))
    before = pose(s)
    out = s.command(command)
    assert out.refused and out.verdict.kind == kind, out.verdict.reasons
    assert pose(s) == before  # a refused command never moves the agent
    return out


def test_shield_refuses_absent_objects():
    seed = find_seed("BabyAI-GoToLocal-v0",
                     lambda e: not any(o.type == "ball" and o.color == "red" for o in objects(e)))
    out = _refused("BabyAI-GoToLocal-v0", seed, "go to the red ball", "absent")
    assert "no red ball" in out.verdict.reasons[0]


def test_shield_refuses_ambiguous_the_but_takes_any_for_a():
    def two_keys(e):
        return sum(o.type == "key" for o in objects(e)) >= 2

    seed = find_seed("BabyAI-PickupLoc-v0", two_keys)
    out = _refused("BabyAI-PickupLoc-v0", seed, "pick up the key", "ambiguous")
    assert "ambiguous" in out.verdict.reasons[0]
    s = Session(RuleParser(), "BabyAI-PickupLoc-v0", seed)
    assert s.command("pick up a key").execution.status == "success"
    assert s.env.unwrapped.carrying.type == "key"


def test_shield_refuses_putting_an_object_next_to_itself():
    def unique_ball(e):
        balls = [o for o in objects(e) if o.type == "ball"]
        return len(balls) == 1

    seed = find_seed("BabyAI-PutNextLocal-v0", unique_ball)
    _refused("BabyAI-PutNextLocal-v0", seed, "put the ball next to the ball", "self")


def test_shield_refuses_what_the_world_cannot_do():
    seed = find_seed("BabyAI-SynthLoc-v0", lambda e: any(o.type == "door" for o in objects(e)))
    _refused("BabyAI-SynthLoc-v0", seed, "pick up a door", "invalid")
    _refused("BabyAI-SynthLoc-v0", seed, "open a ball", "invalid")


def test_shield_refuses_what_cannot_be_parsed():
    _refused("BabyAI-GoToLocal-v0", 0, "sing me a song", "parse")


def test_policy_forbidden_type_and_forbidden_colour():
    seed = find_seed("BabyAI-PickupLoc-v0", lambda e: any(o.type == "key" for o in objects(e)))
    out = _refused("BabyAI-PickupLoc-v0", seed, "pick up a key", "policy", "never pick up keys")
    assert "never pick up keys" in out.verdict.reasons[0]

    def red_door(e):
        return any(o.type == "door" and o.color == "red" for o in objects(e))

    seed = find_seed("BabyAI-BossLevel-v0", red_door, limit=60)
    _refused("BabyAI-BossLevel-v0", seed, "open a red door", "policy",
             "never open red doors")


def test_policy_narrows_a_to_the_allowed_objects():
    def keys_of_two_colours(e):
        return len({o.color for o in objects(e) if o.type == "key"}) >= 2

    seed = find_seed("BabyAI-PickupLoc-v0", keys_of_two_colours)
    env = make_env("BabyAI-PickupLoc-v0")
    reset(env, seed)
    banned = next(o.color for o in objects(env) if o.type == "key")
    s = Session(RuleParser(), "BabyAI-PickupLoc-v0", seed,
                Shield(parse_policy(f"never pick up {banned} keys")))
    out = s.command("pick up a key")
    assert not out.refused and out.execution.status == "success"
    assert s.env.unwrapped.carrying.color != banned
    assert any("left out by the policy" in n for n in out.verdict.notes)


def test_policy_forbidden_cell_is_caught_by_the_dry_run():
    s = Session(RuleParser(), "BabyAI-GoToLocal-v0", 5)
    target = objects(s.env)[0]
    free = Session(RuleParser(), "BabyAI-GoToLocal-v0", 5)
    run = free.command(f"go to a {target.color} {target.type}", stop_on_world_done=False)
    assert run.execution.steps >= 1
    # forbid the first cell the unshielded agent would have stepped on
    twin = make_env("BabyAI-GoToLocal-v0")
    reset(twin, 5)
    first_cells = []
    for a in run.execution.actions:
        twin.step(twin.unwrapped.actions[a])
        first_cells.append(tuple(int(x) for x in twin.unwrapped.agent_pos))
    start = tuple(int(x) for x in s.env.unwrapped.agent_pos)
    cell = next((c for c in first_cells if c != start), None)
    if cell is None:
        pytest.skip("the plan never leaves its cell")
    s.shield = Shield(parse_policy(f"avoid cell {cell[0]},{cell[1]}"))
    before = pose(s)
    out = s.command(f"go to a {target.color} {target.type}")
    assert out.refused and "crosses cell" in out.verdict.reasons[0]
    assert pose(s) == before


def test_sensors_text_and_the_ball_in_front_of_you():
    def one_ball_in_front(e):
        from landfall.embody.sensors import visible_objects
        seen = [o for o in visible_objects(e) if o[1] == "ball" and o[2] > 0]
        return len(seen) == 1 and sum(o.type == "ball" for o in objects(e)) >= 2

    seed = find_seed("BabyAI-PickupLoc-v0", one_ball_in_front)
    s = Session(RuleParser(), "BabyAI-PickupLoc-v0", seed)
    text = s.sensors()
    assert text.startswith("you see ") and "ball" in text and "you carry nothing" in text
    out = s.command("pick up a ball in front of you")
    assert out.execution.status == "success" and s.env.unwrapped.carrying.type == "ball"
    assert "you carry" in s.sensors() and "ball" in s.sensors().split("you carry")[1]


def test_embody_run_end_to_end_writes_a_gif(tmp_path):
    from PIL import Image

    env = make_env("BabyAI-GoToLocal-v0")
    reset(env, 7)
    mission = env.unwrapped.mission
    gif = tmp_path / "run.gif"
    out = landfall.embody_run("rules", level="BabyAI-GoToLocal-v0", command=mission.upper(),
                              seed=7, gif=gif)
    assert out["plan"] == mission and out["world_success"] and not out["refused"]
    with Image.open(gif) as im:
        assert im.n_frames == out["steps"] + 1 > 1


def test_embody_eval_on_missions_and_on_a_command_file(tmp_path):
    res = landfall.embody_eval("rules", output=tmp_path / "m",
                               levels="BabyAI-GoToLocal-v0,BabyAI-PutNextLocal-v0", episodes=4)
    assert res["success_rate"] == 1.0 and set(res["levels"]) == {"BabyAI-GoToLocal-v0",
                                                                  "BabyAI-PutNextLocal-v0"}
    assert json.loads((tmp_path / "m" / "eval.json").read_text())["episodes"] == 8
    env = make_env("BabyAI-GoToLocal-v0")
    reset(env, 3)
    rows = [{"level": "BabyAI-GoToLocal-v0", "seed": 3, "command": env.unwrapped.mission,
             "note": "ignored", "expect": "accept"},
            {"level": "BabyAI-GoToLocal-v0", "seed": 3, "command": "dance", "expect": "refuse"}]
    f = tmp_path / "cmds.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = landfall.embody_eval("rules", output=tmp_path / "c", commands=f)
    assert res["success_rate"] == 0.5 and res["shield"]["precision"] == 1.0
    assert res["shield"]["recall"] == 1.0
    f.write_text('{"level": "BabyAI-GoToLocal-v0", "command": "x"}\n')
    with pytest.raises(landfall.errors.LandfallError, match=r"cmds.jsonl:1: field 'seed'"):
        landfall.embody_eval("rules", output=tmp_path / "d", commands=f)


def test_interactive_mode_shows_the_world_after_each_command(tmp_path):
    import io

    from landfall.embody.interactive import interactive

    s = Session(RuleParser(), "BabyAI-GoToLocal-v0", 2)
    out = io.StringIO()
    n = interactive(s, png=tmp_path / "w.png",
                    stdin=io.StringIO(s.mission + "\nfly away\nquit\n"), stdout=out)
    text = out.getvalue()
    assert n == 1 and "REFUSED" in text and text.count("sensors:") >= 3
    assert (tmp_path / "w.png").exists()


def test_commands_longer_than_one_babyai_tree_run_in_stages():
    from landfall.tasks.command_parser.grammar import representable, stages

    s = Session(RuleParser(), "BabyAI-PickupLoc-v0", 3)
    out = s.command("go to a key, then go to a ball, then pick up a box",
                    stop_on_world_done=False)
    plan = RuleParser().parse("go to a key, then go to a ball, then pick up a box").plan
    assert not representable(plan) and [p.surface() for p in stages(plan)] == [
        "go to a key, then go to a ball", "pick up a box"]
    assert out.execution.status == "success" and s.env.unwrapped.carrying.type == "box"
    # "after you B, A" with the condition first: B runs first
    after = decode("after you pick up a ball , go to a key".split(),
                   ["J-after", "O", "V-pickup", "O", "D-a", "T-ball", "SEP", "V-goto", "O",
                    "D-a", "T-key"])
    assert [a.verb for a in stages(after)[0].actions()] == ["goto", "pickup"]
    assert after.kind == "after"
