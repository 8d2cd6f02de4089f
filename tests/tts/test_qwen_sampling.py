"""voxd.tts.qwen_sampling: the draws follow the softmax, the rules cut exactly, the penalty
is transformers' own, and a keyed draw depends on its row's seed alone."""

from __future__ import annotations

from voxd.tts import qwen_sampling


def test_the_exponential_race_draws_from_the_softmax() -> None:
    import torch

    torch.manual_seed(0)
    scores = torch.tensor([[2.0, 1.0, 0.0, -1.0, 5.0, -3.0]]).repeat(40000, 1)
    expected = torch.softmax(torch.tensor([2.0, 1.0, 0.0, -1.0, 5.0, -3.0]), dim=0)
    rule = qwen_sampling.Sampling(do_sample=True, temperature=1.0, top_k=0, top_p=1.0)
    for sampler in ("exponential", "multinomial"):
        drawn = torch.bincount(qwen_sampling.pick(scores, rule, sampler), minlength=6).float() / len(scores)
        assert torch.allclose(drawn, expected, atol=0.01), (sampler, drawn, expected)
    top2 = qwen_sampling.Sampling(do_sample=True, temperature=0.5, top_k=2, top_p=1.0)
    drawn = torch.bincount(qwen_sampling.pick(scores, top2, "exponential"), minlength=6)
    assert set(drawn.nonzero().flatten().tolist()) == {0, 4}  # only the two best, ever
    nucleus = qwen_sampling.Sampling(do_sample=True, temperature=1.0, top_k=0, top_p=0.5)
    assert set(qwen_sampling.pick(scores[:500], nucleus, "exponential").tolist()) == {4}  # 5.0 alone holds 0.5
    greedy = qwen_sampling.Sampling(do_sample=False)
    assert set(qwen_sampling.pick(scores[:3], greedy, "exponential").tolist()) == {4}


def test_keyed_draws_follow_the_softmax_and_each_row_its_own_seed() -> None:
    import torch

    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, 5.0, -3.0])
    scores = logits.repeat(40000, 1)
    rule = qwen_sampling.Sampling(do_sample=True, temperature=1.0, top_k=0, top_p=1.0)
    seeds = torch.arange(40000) * 7919
    drawn = qwen_sampling.pick(scores, rule, "exponential", (seeds, torch.tensor([3])))
    share = torch.bincount(drawn, minlength=6).float() / len(scores)
    assert torch.allclose(share, torch.softmax(logits, dim=0), atol=0.01), share
    # A row's draws depend on its seed and the draw's number, not on the rows beside it,
    # nor on torch's generator.
    u = qwen_sampling.keyed_uniform(seeds[:50], torch.tensor([9]), 6)
    torch.manual_seed(123)
    alone = qwen_sampling.keyed_uniform(seeds[17:18], torch.tensor([9]), 6)
    assert torch.equal(u[17:18], alone) and bool(((u > 0) & (u < 1)).all())
    assert not torch.equal(u, qwen_sampling.keyed_uniform(seeds[:50], torch.tensor([10]), 6))  # another draw
    assert len({tuple(row.tolist()) for row in u}) == 50  # another seed, another row


def test_the_repetition_penalty_is_transformers_one() -> None:
    import torch
    from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

    scores = torch.tensor([[1.0, -2.0, 3.0, -0.5], [0.5, 0.5, -1.0, 2.0]])
    said = torch.tensor([[0, 1, 1], [3, 2, 3]])
    seen = torch.zeros(2, 4, dtype=torch.bool).scatter_(1, said, True)
    expected = RepetitionPenaltyLogitsProcessor(1.3)(said, scores.clone())
    assert torch.equal(qwen_sampling.penalise(scores, seen, 1.3), expected)
