"""PASE's LoRA adapters on disk: the weights (peft's format) and ``training.json``.

:func:`save_adapter` writes an adapter with a record of how it was made (the command, the
settings, the loss per step and the prompt versions it was trained under);
:func:`load_adapter` puts it back on a base model and refuses one trained under another
prompt version. peft is imported inside the functions only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pase_gym.errors import FinetuneError
from pase_gym.llm.prompts import COMPACT_VERSION, PROMPT_VERSION

ADAPTER_META = "training.json"
RETRAIN_COMMAND = "python -m pase_gym.llm.finetune"  # works wherever the package is installed


def require_peft() -> Any:
    """The ``peft`` module.

    Raises:
        FinetuneError: peft is not installed (it comes with the ``llm`` extra).
    """
    try:
        import peft
    except ImportError:
        raise FinetuneError(
            "peft is not installed; install the LLM extra: pip install 'pase-gym[llm]'"
        ) from None
    return peft


def _prompt_versions() -> dict[str, str]:
    return {"full": PROMPT_VERSION, "compact": COMPACT_VERSION}


def save_adapter(model: Any, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write the adapter weights and ``training.json`` (``meta`` plus the prompt versions).

    Args:
        model: a peft-wrapped model (e.g. from :func:`~pase_gym.llm.training.train_lora`).
        path: the adapter folder (created if needed).
        meta: what to record about the run (command, settings, losses, ...).

    Returns:
        The folder written.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    card = path / "README.md"  # peft's generic model card template: training.json says it all
    if card.is_file() and "More Information Needed" in card.read_text():
        card.unlink()
    record = {"prompt_versions": _prompt_versions(), **meta}
    (path / ADAPTER_META).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path


def adapter_meta(path: str | Path) -> dict[str, Any]:
    """The ``training.json`` of an adapter folder (empty if it has none)."""
    meta = Path(path) / ADAPTER_META
    if not meta.is_file():
        return {}
    data = json.loads(meta.read_text())
    return data if isinstance(data, dict) else {}


def load_adapter(model: Any, path: str | Path) -> Any:
    """``model`` with the LoRA adapter of ``path`` applied (eval mode).

    Raises:
        FinetuneError: peft is missing, the folder holds no adapter, or it was trained under
            another prompt version.
    """
    peft = require_peft()
    path = Path(path)
    if not (path / "adapter_config.json").is_file():
        raise FinetuneError(f"no LoRA adapter in {path} (expected adapter_config.json)")
    meta = adapter_meta(path)
    template = meta.get("config", {}).get("template", "compact")
    want = _prompt_versions().get(template)
    have = meta.get("prompt_versions", {}).get(template, want)
    if have != want:
        raise FinetuneError(
            f"adapter {path} was trained with prompt {have!r}, this version writes {want!r}; "
            f"retrain it ({RETRAIN_COMMAND} --out {path})"
        )
    return peft.PeftModel.from_pretrained(model, str(path)).eval()


__all__ = ["ADAPTER_META", "adapter_meta", "load_adapter", "require_peft", "save_adapter"]
