"""Text normalisation built into a run's tokenizer, so training, predict, serve and the guard
all read text the same way.

``tweet``: @mentions become "@user", URLs "http", and the HTML entities that scraped tweets
carry (``&amp;`` ``&lt;`` ``&gt;`` ``&quot;``) their characters (the normalisation of
BERTweet, Nguyen et al. 2020). Written as ``tokenizers`` normalizers (Rust, no Python per
text). transformers 5 rebuilds a BERT tokenizer's normalizer from its config when it loads
one, so a saved tokenizer.json cannot carry this: the run's ``data.normalize`` does, and
``apply`` is called wherever a run's tokenizer is loaded.
"""

from __future__ import annotations

from landfall.errors import ConfigError

KINDS = ("none", "tweet")


def apply(tokenizer, kind: str):
    """``tokenizer`` with the ``kind`` normalisation before its own (in place; returned)."""
    if kind == "none":
        return tokenizer
    if kind not in KINDS:
        raise ConfigError(f"data.normalize: {kind!r} is not one of {', '.join(KINDS)}")
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError("data.normalize needs a fast (Rust) tokenizer")
    from tokenizers import Regex, normalizers

    steps = [normalizers.Replace(Regex(r"@\w+"), "@user"),
             normalizers.Replace(Regex(r"https?://\S+|www\.\S+"), "http"),
             normalizers.Replace("&amp;", "&"), normalizers.Replace("&lt;", "<"),
             normalizers.Replace("&gt;", ">"), normalizers.Replace("&quot;", '"')]
    bt = tokenizer.backend_tokenizer
    if bt.normalizer is not None:
        steps.append(bt.normalizer)
    bt.normalizer = normalizers.Sequence(steps)
    return tokenizer
