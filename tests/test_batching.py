"""Length-grouped batching: deterministic, complete, little padding."""

from __future__ import annotations

import numpy as np

from landfall.data.batching import collate, inference_batches, training_batches


def test_training_batches_cover_every_index_once_and_repeat_for_a_seed():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 300, size=1000).tolist()
    a = training_batches(lengths, 16, seed=1, epoch=0)
    assert sorted(i for b in a for i in b) == list(range(1000))
    assert a == training_batches(lengths, 16, seed=1, epoch=0)
    assert a != training_batches(lengths, 16, seed=1, epoch=1)
    assert max(lengths[i] for i in a[0]) == max(lengths)  # longest batch first


def test_grouping_cuts_padding_against_random_batches():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 300, size=2000)
    grouped = training_batches(lengths.tolist(), 16, seed=0, epoch=0)
    random = np.array_split(rng.permutation(2000), 125)

    def padded(batches):
        return sum(len(b) * max(lengths[b]) for b in map(list, batches))

    assert padded(grouped) < 0.7 * padded(random)


def test_inference_batches_respect_token_budget():
    lengths = [100] * 10 + [10] * 10
    batches = inference_batches(lengths, batch_size=8, max_tokens=300)
    assert sorted(i for b in batches for i in b) == list(range(20))
    for b in batches:
        assert len(b) * max(lengths[i] for i in b) <= 300 or len(b) == 1


def test_collate_pads_to_longest_or_a_multiple():
    assert collate([[1, 2, 3], [4]], pad_id=0)["input_ids"].shape == (2, 3)
    out = collate([[1, 2, 3], [4]], pad_id=0, multiple=8)
    assert out["input_ids"].shape == (2, 8)
    assert out["attention_mask"].sum().item() == 4
