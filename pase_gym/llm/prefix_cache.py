"""Key/value caches of prompt prefixes, computed once and reused by every call and batch row.

The plan synthesis engine's prompts share an incident-independent head (the task, the primitive
library, the grammar, the fault types: ~750 of ~970 tokens for the ``full`` template). Running it
through the model once and starting every generation from a copy of its keys and values removes
most of the prefill cost. Entries are keyed by the prefix's token ids and a tag for the virtual
tokens placed before it (``None`` for the fixed prompt, the bytes of the prompt embedding ``p``
otherwise), and all are dropped when the weights change.

torch and transformers are imported inside the methods only.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from pase_gym.llm.decoding import output_cache

#: Prefixes kept (each one is ~35 MB for SmolLM2-135M and the ``full`` template).
DEFAULT_SIZE = 4

#: Per layer, the ``(keys, values)`` tensors, each ``(1, kv_heads, length, head_dim)``.
Layers = list[tuple[Any, Any]]


class PrefixCache:
    """Least-recently-used store of prefix key/value caches for one model.

    The weights' identity is part of every key: the in-place version counter of each parameter
    (of the model and of ``extra_params``, e.g. the soft-prompt projection), which optimiser
    steps, ``load_state_dict`` and LoRA merges bump and which adding an adapter extends. Toggling
    a LoRA adapter on or off changes no parameter: call :meth:`clear` after that.

    Args:
        model: a Hugging Face causal LM whose cache is a plain ``DynamicCache`` (LLaMA and most
            decoder-only models; :attr:`supported` turns ``False`` for anything else, such as
            sliding-window layers, and callers then run the whole prompt instead).
        extra_params: more parameters whose change invalidates the cache.
        size: most prefixes kept.
    """

    def __init__(self, model: Any, extra_params: Iterable[Any] = (), size: int = DEFAULT_SIZE):
        self.model = model
        self.extra_params = list(extra_params)
        self.size = size
        self.supported = True
        self._entries: OrderedDict[tuple[Any, ...], Layers] = OrderedDict()
        self._weights: tuple[Any, ...] | None = None
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Drop every cached prefix."""
        self._entries.clear()

    def _weights_version(self) -> tuple[Any, ...]:
        params = [*self.model.parameters(), *self.extra_params]
        return (bool(self.model.training), tuple((id(p), p._version) for p in params))

    def get(self, prefix_ids: Sequence[int], virtual: Any = None, tag: Any = None) -> Layers | None:
        """The batch-1 key/value cache of ``[virtual tokens] + prefix_ids``, computed on a miss.

        Args:
            prefix_ids: the prefix's token ids.
            virtual: ``None`` or ``(1, k, hidden)`` embeddings placed before the prefix.
            tag: identifies ``virtual`` (hashable; ``None`` when ``virtual`` is ``None``).

        Returns:
            Per layer ``(keys, values)``; ``None`` when the model's cache is not a plain
            ``DynamicCache`` (see :attr:`supported`). The tensors are shared: never modify them.
        """
        import torch

        version = self._weights_version()
        if version != self._weights:
            self._entries.clear()
            self._weights = version
        key = (tuple(prefix_ids), tag)
        hit = self._entries.get(key)
        if hit is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return hit
        self.misses += 1
        device = next(self.model.parameters()).device
        ids = torch.tensor([list(prefix_ids)], device=device)
        embeds = self.model.get_input_embeddings()(ids)
        if virtual is not None:
            embeds = torch.cat([virtual.to(embeds.dtype), embeds], dim=1)
        positions = torch.arange(embeds.shape[1], device=device).unsqueeze(0)
        with torch.no_grad():
            out = self.model(
                inputs_embeds=embeds, position_ids=positions, use_cache=True, logits_to_keep=1
            )
        layers = plain_layers(output_cache(out))
        if layers is None:
            self.supported = False
            return None
        self._entries[key] = layers
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return layers


def plain_layers(cache: Any) -> Layers | None:
    """Per layer ``(keys, values)`` of a cache made only of plain dynamic layers, else ``None``."""
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:  # a transformers without per-layer caches
        return None
    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) is not DynamicLayer for layer in layers):
        return None
    return [(layer.keys, layer.values) for layer in layers]


@functools.cache
def _growing_layer_class() -> Any:
    """A ``DynamicLayer`` that appends in place into buffers with spare room.

    The stock layer concatenates the whole cache with the new keys at every step (a copy of
    ~50 MB per step and row for SmolLM2 after a 1,000-token prompt); this one copies only the
    new tokens, growing its buffers by doubling when its ``reserve`` spare slots run out.
    """
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        reserve = 128
        length = 0
        buffers: tuple[Any, Any] | None = None

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> Any:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            end = self.length + key_states.shape[-2]
            bufs = self.buffers
            if bufs is None or end > bufs[0].shape[-2]:
                room = max(end + self.reserve, 2 * (0 if bufs is None else bufs[0].shape[-2]))
                shape = (*key_states.shape[:2], room, key_states.shape[-1])
                bufs = (key_states.new_empty(shape), value_states.new_empty(shape))
                if self.length:
                    bufs[0][:, :, : self.length] = self.keys
                    bufs[1][:, :, : self.length] = self.values
                self.buffers = bufs
            bufs[0][:, :, self.length : end] = key_states
            bufs[1][:, :, self.length : end] = value_states
            self.length = end
            self.keys, self.values = bufs[0][:, :, :end], bufs[1][:, :, :end]
            return self.keys, self.values

        def batch_select_indices(self, indices: Any) -> None:
            if self.buffers is not None:
                self.buffers = (self.buffers[0][indices], self.buffers[1][indices])
                self.keys = self.buffers[0][:, :, : self.length]
                self.values = self.buffers[1][:, :, : self.length]

        def batch_repeat_interleave(self, repeats: int) -> None:
            if self.buffers is not None:
                self.buffers = (
                    self.buffers[0].repeat_interleave(repeats, dim=0),
                    self.buffers[1].repeat_interleave(repeats, dim=0),
                )
                self.keys = self.buffers[0][:, :, : self.length]
                self.values = self.buffers[1][:, :, : self.length]

    return GrowingLayer


def _growing_layer(reserve: int) -> Any:
    layer = _growing_layer_class()()
    layer.reserve = reserve
    return layer


def batch_cache(rows: Sequence[Layers], reserve: int = 128) -> Any:
    """A fresh ``DynamicCache`` holding one prefix per batch row (rows may share a prefix),
    with room for ``reserve`` more tokens before its buffers grow.

    The prefixes are copied into the new cache, never aliased: decoding leaves them intact.
    """
    import torch
    from transformers import DynamicCache

    cache: Any = DynamicCache()
    if getattr(cache, "layer_class_to_replicate", None) is not None:
        cache.layer_class_to_replicate = functools.partial(_growing_layer, reserve)
    first = rows[0]
    shared = all(row is first for row in rows)
    for i in range(len(first)):
        if shared:
            keys = first[i][0].expand(len(rows), -1, -1, -1)
            values = first[i][1].expand(len(rows), -1, -1, -1)
        else:
            keys = torch.cat([row[i][0] for row in rows])
            values = torch.cat([row[i][1] for row in rows])
        cache.update(keys, values, i)
    return cache
