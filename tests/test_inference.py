import random

from models.inference import length_sorted_batches


def test_batches_cover_every_text_once_and_respect_both_limits():
    rng = random.Random(0)
    lengths = [rng.randint(3, 256) for _ in range(500)]
    batches = length_sorted_batches(lengths, batch_size=32, max_tokens=2048)
    assert sorted(i for batch in batches for i in batch) == list(range(500))
    for batch in batches:
        assert len(batch) <= 32
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 2048


def test_a_text_longer_than_the_token_limit_still_gets_a_batch():
    assert length_sorted_batches([5000, 3], batch_size=8, max_tokens=100) == [[1], [0]]
