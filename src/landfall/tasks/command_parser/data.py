"""Training data of the command parser: missions and trees that BabyAI's environments
generate, rendered as tagged words, in BabyAI's own wording and in paraphrases.

Every example is ``(words, tags, sensors, plan)``. Paraphrases come from templates written
here (verbs, connectors, object phrases, politeness), synonyms from WordNet (filtered to the
sense BabyAI means) and, for variety in composition, plans sampled from BabyAI's grammar over
the objects of the same world (pronouns: "go to the red door and open it"). Held-out splits
(unseen colour x type pairs, unseen compositions) are kept out of training here.
"""

from __future__ import annotations

import contextlib
import io
import random
from dataclasses import dataclass

from landfall.errors import ConfigError
from landfall.tasks.command_parser.grammar import COLORS, LOCS, Act, Obj, Plan, Seq
from landfall.tasks.command_parser.lexicon import words_of

EVAL_SEED = 1_000_000  # seeds from here on are for evaluation only (never trained on)

# --- paraphrase templates ------------------------------------------------------------------
# each entry: words, with the tagged word marked by "*" (the others are filler); a keyword
# ("after", "then") carries its connector's tag wherever it appears
VERB_PHRASES = {
    "goto": ["*go to", "*walk to", "*move to", "*head to", "*get to", "*navigate to",
             "*approach", "*go over to", "*run to", "*travel to", "*reach", "*proceed to",
             "*go up to", "*walk up to", "*head over to", "*go toward", "*go towards",
             "make your *way to", "*drive to", "*visit", "*come to", "*stand next to",
             "*go next to", "*find"],
    "pickup": ["*pick up", "*grab", "*take", "*get", "*fetch", "*collect", "*lift",
               "*retrieve", "*grasp", "*snatch", "*obtain", "*seize", "*pick", "*take hold of",
               "*bring me", "*hold"],
    "open": ["*open", "*unlock", "*open up", "*unbolt", "*push open", "*swing open",
             "*unlatch", "*pull open"],
}
PICKUP_SPLIT = ["*pick {o} up", "*lift {o} up", "*take {o} up"]  # "pick the ball up"
PUT_PHRASES = ["*put {a} *next to {b}", "*place {a} *next to {b}", "*put {a} *beside {b}",
               "*set {a} down *next to {b}", "*move {a} *next to {b}", "*drop {a} *next to {b}",
               "*bring {a} *next to {b}", "*place {a} *by {b}", "*put {a} *near {b}",
               "*leave {a} *beside {b}", "*position {a} *adjacent to {b}",
               "*carry {a} *over to {b}", "*take {a} *to {b}", "*put {a} down *beside {b}",
               "*move {a} *close to {b}", "*put {a} *alongside {b}", "*drop {a} *by {b}",
               "*place {a} *near {b}", "*set {a} *beside {b}"]
DETS = {"the": ["*the", "*the", "*the", "*that", "*this"],
        "a": ["*a", "*a", "*any", "*some", "*one"]}
TYPE_WORDS = {"ball": ["ball", "ball", "sphere", "orb", "globe"],
              "box": ["box", "box", "crate", "chest", "container", "carton", "case"],
              "key": ["key", "key", "key"],
              "door": ["door", "door", "doorway", "gate", "entrance"],
              None: ["object", "thing", "item"]}
COLOR_WORDS = {"red": ["red", "crimson", "scarlet"], "green": ["green", "emerald"],
               "blue": ["blue", "azure", "navy"], "purple": ["purple", "violet"],
               "yellow": ["yellow", "golden"], "grey": ["grey", "gray", "silver"]}
LOC_PHRASES = {"front": ["in *front of you", "*ahead of you", "*ahead", "in *front",
                         "that is in *front of you", "straight *ahead"],
               "behind": ["*behind you", "at your *back", "*behind", "*behind your back",
                          "that is *behind you"],
               "left": ["on your *left", "to your *left", "on the *left", "*left of you",
                        "at your *left", "on your *left side"],
               "right": ["on your *right", "to your *right", "on the *right", "*right of you",
                         "at your *right", "on your *right side"]}
AND_PHRASES = ["*and", "*and", "*and also", "*as well as", "*plus", ", *and", "*also"]
BEFORE_PHRASES = [", *then", "*then", "and *then", ", and *then", ", *after that",
                  "and *after that", "*before you", ", *next", ", *afterwards"]
AFTER_PHRASES = ["*after you", "*once you", "*when you", "*but first", "*as soon as you",
                 "only *after you"]
# sentence-initial: "after you B, A" / "first B, then A" are handled as their own forms
PRE_AFTER = ["*after you", "*once you", "*when you", "*as soon as you"]
PRE_BEFORE = ["*before you"]
PREFIXES = ["", "", "", "please", "could you", "can you", "i want you to", "now", "robot",
            "hey", "go ahead and", "i need you to", "would you", "your task is to", "try to",
            "kindly", "you should", "let s", "ok"]
SUFFIXES = ["", "", "", "", "please", "now", "for me", "thanks", "quickly", "right away",
            "when you can"]
PRONOUNS = ["it", "it", "that", "that one", "the same one", "this"]


def _wordnet_colours() -> dict[str, list[str]]:
    """WordNet's synonyms of BabyAI's colours, kept where they are the colour itself
    ("greyish", "bluish", "crimson"); the rest of WordNet's senses (political "red", cowardly
    "yellow") are dropped."""
    try:
        from landfall.data.augment import synonyms
    except Exception:  # noqa: BLE001 - WordNet is optional here
        return {}
    keep = {"crimson", "carmine", "cerise", "cherry", "violet", "purplish", "gray", "grayish",
            "greyish", "bluish", "blueish", "greenish", "yellowish", "reddish", "ruby",
            "scarlet", "vermilion", "lavender", "xanthous"}
    out = {}
    for c in COLORS:
        try:
            syn = synonyms(c)
        except Exception:  # noqa: BLE001 - no WordNet database: templates only
            return {}
        out[c] = [s for s in syn if s in keep or (s.startswith(c[:4]) and s.endswith("ish"))]
    return out


@dataclass
class Example:
    words: list[str]
    tags: list[str]
    sensors: str
    plan: Plan
    level: str = ""
    seed: int = -1
    style: str = "babyai"  # babyai (the environment's own wording) or paraphrase


class Renderer:
    """Writes a plan as tagged words: BabyAI's own wording or a seeded paraphrase."""

    def __init__(self, rng: random.Random, wordnet: bool = True):
        self.rng = rng
        self.colors = {c: list(w) for c, w in COLOR_WORDS.items()}
        if wordnet:
            for c, extra in _wordnet_colours().items():
                self.colors[c] += [w for w in extra if w not in self.colors[c]]

    # BabyAI's own surface, tagged
    def babyai(self, plan: Plan) -> tuple[list[str], list[str]]:
        out: list[tuple[str, str]] = []
        self._canon(plan, out)
        return [w for w, _ in out], [t for _, t in out]

    def _canon(self, plan: Plan, out) -> None:
        if isinstance(plan, Seq):
            self._canon(plan.a, out)
            if plan.kind == "and":
                out.append(("and", "J-and"))
            elif plan.kind == "before":
                out += [(",", "O"), ("then", "J-before")]
            else:
                out += [("after", "J-after"), ("you", "O")]
            self._canon(plan.b, out)
            return
        if plan.verb == "putnext":
            out.append(("put", "V-putnext"))
            self._canon_obj(plan.obj, out)
            out += [("next", "NEXT"), ("to", "O")]
            self._canon_obj(plan.fixed, out)
            return
        out += {"goto": [("go", "V-goto"), ("to", "O")], "pickup": [("pick", "V-pickup"),
                ("up", "O")], "open": [("open", "V-open")]}[plan.verb]
        self._canon_obj(plan.obj, out)

    @staticmethod
    def _canon_obj(o: Obj, out) -> None:
        out.append((o.det, f"D-{o.det}"))
        if o.color:
            out.append((o.color, f"C-{o.color}"))
        out.append((o.type or "object", f"T-{o.type or 'object'}"))
        if o.loc:
            words = {"front": "in front of you", "behind": "behind you"}.get(
                o.loc, f"on your {o.loc}")
            out += [(w, f"L-{o.loc}" if w == o.loc else "O") for w in words.split()]

    # paraphrases
    def paraphrase(self, plan: Plan) -> tuple[list[str], list[str]]:
        r = self.rng
        out: list[tuple[str, str]] = []
        self._filler(r.choice(PREFIXES), out)
        self._seq(plan, out, top=True, prev=None)
        self._filler(r.choice(SUFFIXES), out)
        return [w for w, _ in out], [t for _, t in out]

    @staticmethod
    def _filler(text: str, out) -> None:
        out += [(w, "O") for w in words_of(text)]

    @staticmethod
    def _phrase(template: str, tag: str, out) -> None:
        """Words of ``template``; the word after each '*' gets ``tag`` (the others O)."""
        for w in template.split():
            if w.startswith("*"):
                for i, piece in enumerate(words_of(w[1:])):
                    out.append((piece, tag if i == 0 else "O"))
            else:
                out += [(p, "O") for p in words_of(w)]

    def _seq(self, plan: Plan, out, top: bool, prev) -> Obj | None:
        r = self.rng
        if isinstance(plan, Act):
            return self._act(plan, out, prev)
        if plan.kind == "and":
            prev = self._seq(plan.a, out, False, prev)
            self._phrase(r.choice(AND_PHRASES), "J-and", out)
            return self._seq(plan.b, out, False, prev)
        if top and r.random() < 0.3:  # sentence-initial condition: "after you B, A"
            table, tag = ((PRE_AFTER, "J-pre-after") if plan.kind == "after"
                          else (PRE_BEFORE, "J-pre-before"))
            self._phrase(r.choice(table), tag, out)
            prev = self._seq(plan.b, out, False, prev)
            out.append((",", "SEP"))
            return self._seq(plan.a, out, False, prev)
        if plan.kind == "before" and top and r.random() < 0.3:
            out.append(("first", "O"))
        prev = self._seq(plan.a, out, False, prev)
        table, tag = ((BEFORE_PHRASES, "J-before") if plan.kind == "before"
                      else (AFTER_PHRASES, "J-after"))
        self._phrase(r.choice(table), tag, out)
        return self._seq(plan.b, out, False, prev)

    def _act(self, a: Act, out, prev: Obj | None) -> Obj:
        r = self.rng
        if a.verb == "putnext":
            t = r.choice(PUT_PHRASES)
            head, rest = t.split("{a}")
            mid, tail = rest.split("{b}")
            self._phrase(head, "V-putnext", out)
            self._obj(a.obj, out, prev)
            self._phrase(mid, "NEXT", out)
            self._obj(a.fixed, out, None)
            self._phrase(tail, "O", out)
            return a.obj
        if a.verb == "pickup" and r.random() < 0.12:
            head, tail = r.choice(PICKUP_SPLIT).split("{o}")
            self._phrase(head, "V-pickup", out)
            self._obj(a.obj, out, prev)
            self._phrase(tail, "O", out)
            return a.obj
        self._phrase(r.choice(VERB_PHRASES[a.verb]), f"V-{a.verb}", out)
        self._obj(a.obj, out, prev)
        return a.obj

    def _obj(self, o: Obj, out, prev: Obj | None) -> None:
        r = self.rng
        if prev is not None and prev.key() == o.key() and r.random() < 0.8:
            for i, w in enumerate(words_of(r.choice(PRONOUNS))):
                out.append((w, "IT" if i == 0 else "O"))
            return
        self._phrase(r.choice(DETS[o.det]), f"D-{o.det}", out)
        type_word = r.choice(TYPE_WORDS[o.type])
        type_tag = f"T-{o.type or 'object'}"
        color = [(r.choice(self.colors[o.color]), f"C-{o.color}")] if o.color else []
        if color and r.random() < 0.1:  # "the ball that is red"
            out.append((type_word, type_tag))
            out += [("that", "O"), ("is", "O")] + color
        else:
            out += color + [(type_word, type_tag)]
        if o.loc:
            self._phrase(r.choice(LOC_PHRASES[o.loc]), f"L-{o.loc}", out)


# --- plans from the environments -----------------------------------------------------------


def make_env(level: str):
    import gymnasium as gym
    import minigrid  # noqa: F401  (registers the BabyAI levels)

    try:
        return gym.make(level)
    except gym.error.Error as e:
        raise ConfigError(f"level {level!r}: not a registered environment ({e})") from e


def reset(env, seed: int):
    """``env.reset(seed=seed)`` without minigrid's rejection-sampling chatter on stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        return env.reset(seed=seed)


def world_objects(env) -> list[tuple[str, str]]:
    u = env.unwrapped
    out = []
    for cell in u.grid.grid:
        if cell is not None and cell.type in ("ball", "box", "key", "door"):
            out.append((cell.type, cell.color))
    return out


def sample_plan(objs: list[tuple[str, str]], rng: random.Random, locations: bool) -> Plan:
    """A plan from BabyAI's grammar over the world's own objects (pronoun-friendly: the
    second action often names the first's object again)."""
    def obj(kinds=None) -> Obj:
        pool = [o for o in objs if kinds is None or o[0] in kinds] or objs
        t, c = rng.choice(pool)
        drop = rng.random()
        loc = rng.choice(LOCS) if locations and rng.random() < 0.25 else None
        det = rng.choice(["the", "a"])
        if drop < 0.15:
            return Obj(None, c, loc, det)
        if drop < 0.4:
            return Obj(t, None, loc, det)
        return Obj(t, c, loc, det)

    def act() -> Act:
        verb = rng.choice(["goto", "pickup", "open", "putnext"])
        if verb == "open" and any(o[0] == "door" for o in objs):
            return Act("open", obj(["door"]))
        if verb == "pickup":
            return Act("pickup", obj(["ball", "box", "key"]))
        if verb == "putnext":
            return Act("putnext", obj(["ball", "box", "key"]), obj())
        return Act("goto", obj())  # also "open" in a world without doors

    def follow_up(first: Act) -> Act:  # the same object again: "go to X and pick it up"
        o = first.obj
        if o.type == "door":
            return Act("open", o)
        return rng.choice([Act("pickup", o), Act("putnext", o, obj())])

    kind = rng.random()
    if kind < 0.35:
        return act()
    a = act()
    b = follow_up(a) if rng.random() < 0.3 and a.verb == "goto" else act()
    if kind < 0.65:
        return Seq("and", a, b)
    return Seq(rng.choice(["before", "after"]), a, b)


# --- held-out splits -----------------------------------------------------------------------


def parse_pairs(text: str) -> set[tuple[str, str]]:
    """'red ball, green key' -> {('red', 'ball'), ('green', 'key')}."""
    pairs = set()
    for item in filter(None, (p.strip() for p in text.split(","))):
        bits = item.split()
        if len(bits) != 2:
            raise ConfigError(f"command_parser.heldout_pairs: {item!r} is not 'colour type'")
        pairs.add((bits[0], bits[1]))
    return pairs


def has_pair(plan: Plan, pairs: set[tuple[str, str]]) -> bool:
    return any((o.color, o.type) in pairs for o in plan.objects())


def is_heldout_composition(plan: Plan) -> bool:
    """The held-out composition: a sequence whose both halves are conjunctions
    ("A and B, then C and D")."""
    return (isinstance(plan, Seq) and plan.kind != "and" and isinstance(plan.a, Seq)
            and isinstance(plan.b, Seq))


def episodes(levels: list[str], seeds: range):
    """(level, seed, env) for each seed, cycling through the levels (the env is reset)."""
    envs = {lvl: make_env(lvl) for lvl in levels}
    for i, seed in enumerate(seeds):
        level = levels[i % len(levels)]
        env = envs[level]
        reset(env, seed)
        yield level, seed, env


def generate(levels: list[str], seeds: range, *, rng: random.Random, paraphrases: int,
             synthetic: int, babyai: bool = True, wordnet: bool = True, sensors: bool = True,
             exclude_pairs: set | None = None, exclude_composition: bool = False,
             only=None) -> list[Example]:
    """Examples from the missions of ``levels`` at ``seeds``: BabyAI's own wording (if
    ``babyai``), ``paraphrases`` rewordings of each mission, and ``synthetic`` sampled plans
    over the same world, paraphrased. ``only(plan)`` keeps a subset (a held-out split)."""
    from landfall.tasks.command_parser.grammar import from_instr
    from landfall.tasks.command_parser.sensors import describe

    render = Renderer(rng, wordnet=wordnet)
    out: list[Example] = []

    def keep(plan: Plan) -> bool:
        if exclude_pairs and has_pair(plan, exclude_pairs):
            return False
        if exclude_composition and is_heldout_composition(plan):
            return False
        return only is None or only(plan)

    for level, seed, env in episodes(levels, seeds):
        sens = describe(env) if sensors else ""
        plan = from_instr(env.unwrapped.instrs)
        if keep(plan):
            if babyai:
                w, t = render.babyai(plan)
                out.append(Example(w, t, sens, plan, level, seed, "babyai"))
            for _ in range(paraphrases):
                w, t = render.paraphrase(plan)
                out.append(Example(w, t, sens, plan, level, seed, "paraphrase"))
        objs = world_objects(env)
        for _ in range(synthetic if objs else 0):
            p = sample_plan(objs, rng, locations=True)
            if keep(p):
                w, t = render.paraphrase(p)
                out.append(Example(w, t, sens, p, level, seed, "synthetic"))
    return out
