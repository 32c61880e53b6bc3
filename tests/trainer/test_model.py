"""The tiny model, the tokenizer, from_pretrained round trips and KV-cache generation."""

from pathlib import Path

import torch

from trainer_client.grpo.model import build_tiny, char_tokenizer, load_policy
from trainer_client.grpo.rollout import (
    completion_logprobs,
    encode_prompts,
    generate,
    positions,
    select_rows,
)

CPU = torch.device("cpu")


def test_char_tokenizer_round_trip() -> None:
    tok = char_tokenizer()
    ids = tok("12=ab c\n", add_special_tokens=False)["input_ids"]
    assert len(ids) == 8 and tok.decode(ids) == "12=ab c\n"
    assert tok.decode([*ids[:2], tok.eos_token_id], skip_special_tokens=True) == "12"


def test_from_pretrained_round_trip(tmp_path: Path) -> None:
    """A tiny model saved by the test loads through AutoModel/AutoTokenizer unchanged."""
    tok = char_tokenizer()
    model = build_tiny(tok, seed=3).eval()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded, loaded_tok = load_policy(str(tmp_path), CPU, torch.float32)
    ids = torch.tensor([tok("4071=", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        # Close, not equal: the reload may pick another attention kernel (SDPA vs eager).
        assert torch.allclose(
            model(input_ids=ids).logits, loaded.eval()(input_ids=ids).logits, atol=1e-5
        )
    assert loaded_tok("4071=")["input_ids"] == tok("4071=")["input_ids"]
    assert (loaded_tok.eos_token_id, loaded_tok.pad_token_id) == (tok.eos_token_id, 0)


def test_cached_greedy_generation_matches_full_recompute() -> None:
    """Left padding + position ids + KV cache give what re-running the whole prefix gives."""
    tok = char_tokenizer()
    model = build_tiny(tok, seed=1).eval()
    prompts = ["1=", "12345=", "987="]
    rollout = generate(model, tok, prompts, max_new_tokens=6, temperature=0.0)
    for row, prompt in enumerate(prompts):
        ids, mask = encode_prompts(tok, [prompt], CPU)
        for _ in range(6):
            with torch.no_grad():
                logits = model(
                    input_ids=ids, attention_mask=mask, position_ids=positions(mask)
                ).logits
            ids = torch.cat([ids, logits[:, -1:].argmax(-1)], dim=1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        expected = ids[0, -6:]
        keep = rollout.completion_mask[row].bool()
        completion = rollout.input_ids[row, rollout.prompt_len :][keep]
        assert torch.equal(completion, expected[: keep.sum()])


def test_completion_mask_stops_after_eos() -> None:
    """A model that always emits EOS gives one-token completions: the EOS, then padding."""
    tok = char_tokenizer()
    model = build_tiny(tok).eval()
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()  # every final hidden state becomes all ones
        model.transformer.ln_f.bias.fill_(1.0)
        model.lm_head.weight.zero_()  # tied to the input embedding, fine for this test
        model.lm_head.weight[tok.eos_token_id] = 1.0  # EOS logit 64, every other 0
    rollout = generate(model, tok, ["12=", "3="], max_new_tokens=4, temperature=0.0)
    assert rollout.completion_mask.tolist() == [[1], [1]]
    assert rollout.texts == ["", ""]


def test_completion_logprobs_shape_and_sum() -> None:
    tok = char_tokenizer()
    model = build_tiny(tok).eval()
    gen = torch.Generator().manual_seed(0)
    rollout = generate(model, tok, ["12=", "34567="], max_new_tokens=5, generator=gen)
    logp = completion_logprobs(model, rollout)
    assert logp.shape == rollout.completion_mask.shape
    assert bool((logp <= 0).all())


def test_a_context_too_short_for_the_prompts_is_a_clear_error() -> None:
    """20 positions, a 15-character prompt and 9 new tokens: refused up front, by name."""
    import pytest

    from trainer_client.grpo.model import check_context, context_length

    tok = char_tokenizer()
    model = build_tiny(tok, n_positions=20)
    assert context_length(model) == 20
    check_context(model, tok, ["12345"], max_new_tokens=9)
    with pytest.raises(ValueError, match="more than the model's 20 positions"):
        check_context(model, tok, ["123456789012345"], max_new_tokens=9)


def test_the_tiny_model_is_sized_for_long_prompts(tmp_path: Path) -> None:
    """Knights-and-Knaves prompts run to hundreds of characters: the tiny model built for
    them has positions for the longest prompt plus the new tokens."""
    from trainer_client.grpo.config import TrainConfig
    from trainer_client.grpo.scheduler import LocalScheduler
    from trainer_client.grpo.tasks import build_distributions
    from trainer_client.grpo.trainer import GRPOTrainer

    config = TrainConfig(
        task="kk",
        levels=[6],
        train_size=4,
        test_size=2,
        max_new_tokens=40,
        warmstart_steps=0,
        output_dir=str(tmp_path),
        scheduler="local",
    )
    dists = build_distributions("kk", [6], 0, 4, 2)
    trainer = GRPOTrainer(
        config, LocalScheduler([d.name for d in dists]), distributions=dists, progress=False
    )
    longest = max(len(ex.prompt) for d in dists for ex in (*d.train, *d.test))
    assert longest + 40 > 256
    assert trainer.model.config.n_positions >= longest + 40


def test_pick_device_dtype() -> None:
    import pytest

    from trainer_client.grpo.config import TrainConfig
    from trainer_client.grpo.model import pick_device

    assert pick_device("cpu") == (torch.device("cpu"), torch.float32)
    assert pick_device("cpu", "bfloat16") == (torch.device("cpu"), torch.bfloat16)
    assert pick_device("cpu", "float32") == (torch.device("cpu"), torch.float32)
    if torch.cuda.is_available():
        assert pick_device("cuda")[1] == torch.bfloat16
        assert pick_device("cuda", "float32")[1] == torch.float32
    with pytest.raises(ValueError, match="dtype must be"):
        TrainConfig(dtype="float16")


def test_rows_of_several_rollouts_keep_their_logprobs_when_merged() -> None:
    """select_rows re-pads rows of rollouts of other prompt and completion lengths; each
    kept row's completion log-probabilities and text are those it had in its own rollout."""
    tok = char_tokenizer()
    model = build_tiny(tok, seed=2).eval()
    gen = torch.Generator().manual_seed(0)
    short = generate(model, tok, ["1=", "23="], max_new_tokens=3, generator=gen)
    long = generate(model, tok, ["12345=", "9=", "876="], max_new_tokens=6, generator=gen)
    merged = select_rows([(short, [1]), (long, [0, 2])], tok.pad_token_id)
    assert merged.texts == [short.texts[1], long.texts[0], long.texts[2]]
    with torch.no_grad():
        got = completion_logprobs(model, merged)
        for row, (r, i) in enumerate([(short, 1), (long, 0), (long, 2)]):
            mask = r.completion_mask[i].bool()
            expected = completion_logprobs(model, r)[i][mask]
            assert torch.equal(merged.completion_mask[row][: mask.numel()], r.completion_mask[i])
            assert merged.completion_mask[row][mask.numel() :].sum() == 0
            torch.testing.assert_close(got[row][: mask.numel()][mask], expected, atol=1e-5, rtol=0)
    whole = select_rows([(long, [0, 1, 2])], tok.pad_token_id)
    assert whole is long
