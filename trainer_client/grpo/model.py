"""The policy model and its tokenizer: a local checkpoint, or a tiny GPT-2 built in-process.

A machine without downloaded weights can still train: :func:`build_tiny` makes a 2-layer
GPT-2 from a config and a character-level tokenizer from the printable ASCII set, both of
which ``save_pretrained`` and reload with ``from_pretrained`` like any hub model.
"""

from __future__ import annotations

import string
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
CHARSET = string.printable.replace("\x0b", "").replace("\x0c", "").replace("\r", "")
"""Characters the tiny tokenizer knows, one token each (letters, digits, punctuation, space,
tab, newline)."""


def pick_device(requested: str = "auto", dtype: str = "auto") -> tuple[torch.device, torch.dtype]:
    """The device and parameter dtype to train on.

    ``"auto"`` picks CUDA when a GPU is present, else the CPU; dtype ``"auto"`` is bfloat16 on
    CUDA (halves memory, and modern GPUs run it at full speed) and float32 on the CPU (CPU
    bfloat16 matmuls are slow and lossy).
    """
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    if dtype == "auto":
        return device, torch.bfloat16 if device.type == "cuda" else torch.float32
    return device, {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]


def char_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer: one token per character of :data:`CHARSET`.

    ``encode("12=")`` gives three ids; ``decode`` joins tokens with no separator, so
    ``decode(encode(s)) == s`` for any string of known characters.
    """
    vocab = {tok: i for i, tok in enumerate([PAD, EOS, UNK, *CHARSET])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    # Every single character is its own pre-token, so WordLevel maps it straight to its id.
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=PAD, eos_token=EOS, unk_token=UNK
    )


def build_tiny(
    tokenizer: PreTrainedTokenizerBase,
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    n_positions: int = 256,
    seed: int = 0,
) -> PreTrainedModel:
    """A freshly initialised GPT-2 sized for ``tokenizer``, deterministic given ``seed``."""
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        # RL fine-tuning runs without dropout (it would make the sampling policy and the
        # policy being scored differ); exact GELU is a fused kernel, gelu_new is not.
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        activation_function="gelu",
    )
    # At this size, eager attention beats SDPA's masked CPU path (measured ~1.4x per step).
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


def load_policy(
    name: str,
    device: torch.device,
    dtype: torch.dtype,
    tiny_layers: int = 2,
    tiny_dim: int = 64,
    tiny_heads: int = 4,
    seed: int = 0,
    tiny_positions: int = 256,
    attn_implementation: str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model and tokenizer to train: ``"tiny"`` builds one (with ``tiny_positions``
    positions), anything else is a local path, loaded with ``attn_implementation`` when
    given (``save_pretrained`` does not record it, so a reloaded tiny model needs it again).

    A tokenizer without a pad token gets its EOS token as pad (generation masks padding, so
    the choice only has to be a valid id).
    """
    if name == "tiny":
        tokenizer = char_tokenizer()
        model = build_tiny(tokenizer, tiny_layers, tiny_dim, tiny_heads, tiny_positions, seed)
    else:
        path = Path(name)
        if not path.is_dir():
            raise FileNotFoundError(
                f"model {name!r} is neither 'tiny' nor a local directory; this machine cannot "
                "download weights, so point --model at a folder saved with save_pretrained"
            )
        tokenizer = AutoTokenizer.from_pretrained(path)
        options = {"attn_implementation": attn_implementation} if attn_implementation else {}
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **options)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.eos_token_id is None:
        raise ValueError(f"tokenizer of {name!r} has no EOS token; completions could never end")
    return model.to(device=device, dtype=dtype), tokenizer


def context_length(model: PreTrainedModel) -> int | None:
    """How many positions the model can attend over (``None`` when its config does not say)."""
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(model.config, name, None)
        if isinstance(value, int):
            return value
    return None


def check_context(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    max_new_tokens: int,
) -> None:
    """Raise ``ValueError`` if the longest prompt plus ``max_new_tokens`` overflows the model.

    Without this a too-short context fails mid-generation with an index error from the
    position embedding, which says nothing about the cause.
    """
    limit = context_length(model)
    if limit is None or not prompts:
        return
    longest = max(len(tokenizer(p).input_ids) for p in prompts)
    if longest + max_new_tokens > limit:
        raise ValueError(
            f"the longest prompt has {longest} tokens; with max_new_tokens={max_new_tokens} "
            f"that is more than the model's {limit} positions. Use shorter tasks (fewer "
            "levels), fewer new tokens, or a model with a longer context"
        )
