"""Hugging Face models from their configs, offline: ``hf:MODEL_TYPE``, ``hf:PATH``,
``hf:ORG/NAME``.

Only a config is read (never weights, never remote code), and nothing touches the network:
the Hub's offline switches are set for the duration of every call into ``transformers``,
and a hub id is looked up in the local cache only. The model is built like any zoo model
(on meta by default: no parameter memory). ``--arg key=value`` overrides config fields
(``text_config.num_hidden_layers`` for a nested one; a plain key missing at the top goes to
every sub-config that has it), and ``--arg head=...`` picks the model class.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cnnprof.errors import ModelLoadError, UnknownModelError, UsageError
from cnnprof.inputs import InputSpec
from cnnprof.zoo.base import ZooEntry

#: ``--arg head=NAME`` → the transformers auto class that maps a config to that head
HEADS: dict[str, str] = {
    "base": "AutoModel",
    "causal-lm": "AutoModelForCausalLM",
    "masked-lm": "AutoModelForMaskedLM",
    "seq2seq-lm": "AutoModelForSeq2SeqLM",
    "sequence-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "image-classification": "AutoModelForImageClassification",
    "speech-seq2seq": "AutoModelForSpeechSeq2Seq",
}

#: model types ``cnnprof models --filter hf`` lists (any of transformers' model types works)
EXAMPLES = ("bert", "gpt2", "t5", "llama", "mistral", "qwen2", "vit", "clip", "whisper")

#: environment switches that keep huggingface_hub and transformers off the network
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
#: default text length (tokens), capped by the model's position table
TEXT_TOKENS = 128


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Set the offline switches; restore the caller's values afterwards."""
    saved = {name: os.environ.get(name) for name in OFFLINE_VARS}
    os.environ.update({name: "1" for name in OFFLINE_VARS})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise UsageError("transformers is not installed (needed for hf: models)",
                         hint="pip install 'cnnprof[hf]'") from None
    transformers.logging.set_verbosity_error()  # config warnings are not the user's business
    return transformers


def cache_dir() -> Path:
    """Where huggingface_hub keeps downloaded repos (same rules as huggingface_hub)."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.environ[name]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _looks_like_path(target: str) -> bool:
    return (target.startswith((".", "/", "~")) or target.endswith(".json")
            or (os.sep != "/" and os.sep in target) or target.count("/") > 1)


@dataclass(frozen=True)
class _Source:
    config: dict[str, Any]  # the config file's contents ({} for a bare model type)
    model_type: str
    where: str  # for messages: the file, the cache file, or "default config"
    architecture: str | None


def _read_config(path: Path, transformers: Any) -> _Source:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} is not a config (a JSON object)")
    model_type = data.get("model_type")
    if not isinstance(model_type, str):
        raise ModelLoadError(f"{path} names no model_type",
                             hint="a transformers config.json has one, e.g. \"llama\"")
    if model_type not in transformers.CONFIG_MAPPING:
        raise UnknownModelError(
            f"unknown model type {model_type!r} in {path}",
            hint="cnnprof never runs a repository's own code (trust_remote_code); "
                 + _type_hint(model_type, transformers))
    archs = data.get("architectures")
    arch = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None
    return _Source(data, model_type, str(path), arch)


def _type_hint(name: str, transformers: Any) -> str:
    close = difflib.get_close_matches(name.lower(), list(transformers.CONFIG_MAPPING.keys()),
                                      n=3, cutoff=0.6)
    if close:
        return f"did you mean {', '.join('hf:' + c for c in close)}?"
    return "see the model types in docs/huggingface.md"


def _locate(target: str, transformers: Any) -> _Source:
    path = Path(target).expanduser()
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise ModelLoadError(f"{path} has no config.json",
                                 hint="pass a directory holding a transformers config.json, "
                                      "or the config file itself")
        return _read_config(config, transformers)
    if path.is_file():
        return _read_config(path, transformers)
    if _looks_like_path(target):
        raise ModelLoadError(f"no such file or directory: {target}",
                             hint="hf:PATH takes a directory with config.json or the file")
    if "/" in target:
        return _from_cache(target, transformers)
    if target not in transformers.CONFIG_MAPPING:
        raise UnknownModelError(f"unknown Hugging Face model type {target!r}",
                                hint=_type_hint(target, transformers))
    return _Source({}, target, "default config", None)


def _from_cache(repo: str, transformers: Any) -> _Source:
    from huggingface_hub import try_to_load_from_cache

    cache = cache_dir()
    found = None
    with contextlib.suppress(ValueError):  # not a valid repo id: reported as not cached
        found = try_to_load_from_cache(repo, "config.json", cache_dir=str(cache))
    if not isinstance(found, str):
        raise ModelLoadError(
            f"{repo} is not in the local Hugging Face cache ({cache}); cnnprof never downloads",
            hint="put its config.json in a directory and pass hf:./DIR, or fetch it "
                 f"yourself: huggingface-cli download {repo} config.json")
    return _read_config(Path(found), transformers)


def _known_fields(config_class: Any, data: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The config's fields with their values (defaults, overlaid by the file), and the
    aliases its ``attribute_map`` accepts (GPT-2's ``num_hidden_layers`` → ``n_layer``)."""
    try:
        defaults = config_class().to_dict()
    except Exception:  # a config with required arguments: the file's fields only
        defaults = {}
    return {**defaults, **data}, set(getattr(config_class, "attribute_map", {}) or {})


def _apply_overrides(source: _Source, config_class: Any,
                     overrides: dict[str, Any]) -> dict[str, Any]:
    """The config dict with ``--arg`` overrides applied; unknown fields are refused."""
    fields, aliases = _known_fields(config_class, source.config)
    data = dict(source.config)
    subs = {k for k, v in fields.items() if isinstance(v, dict) and k in
            (getattr(config_class, "sub_configs", None) or {})}

    def sub(name: str) -> dict[str, Any]:
        current = data.get(name)
        base = dict(current) if isinstance(current, dict) else {}
        data[name] = base
        return base

    for key, value in overrides.items():
        head, dot, rest = key.partition(".")
        if dot:
            if head not in subs:
                raise UsageError(f"--arg {key}: {source.model_type} has no sub-config {head!r}",
                                 hint=f"sub-configs: {', '.join(sorted(subs)) or 'none'}")
            if rest not in fields[head]:
                raise UsageError(f"--arg {key}: no field {rest!r} in {head}",
                                 hint=_did_you_mean(rest, fields[head]))
            sub(head)[rest] = value
        elif key in fields or key in aliases:
            data[key] = value
        elif any(key in fields[name] for name in subs):
            for name in subs:
                if key in fields[name]:
                    sub(name)[key] = value
        else:
            names = set(fields) | aliases
            for name in subs:
                names |= {f"{name}.{k}" for k in fields[name]}
            raise UsageError(f"--arg {key}: {source.model_type} config has no field {key!r}",
                             hint=_did_you_mean(key, names))
    return data


def _did_you_mean(key: str, names: Any) -> str:
    close = difflib.get_close_matches(key, sorted(names), n=3, cutoff=0.6)
    return (f"did you mean {', '.join(close)}?" if close
            else "see the fields of the model's config.json")


def _model_class(transformers: Any, config: Any, head: str | None, source: _Source
                 ) -> tuple[Any, list[str]]:
    """The class to build and notes on how it was chosen."""
    if head is None and source.architecture is not None:
        cls = getattr(transformers, source.architecture, None)
        if cls is not None:
            return cls, []
        base, _ = _model_class(transformers, config, "base", source)
        return base, [f"architecture {source.architecture} is not in transformers "
                      f"{transformers.__version__}; built {base.__name__}"]
    name = head or "base"
    if name in HEADS:
        mapping = getattr(transformers, HEADS[name])._model_mapping
        if type(config) in mapping:
            return mapping[type(config)], []
        has = [h for h, auto in HEADS.items()
               if type(config) in getattr(transformers, auto)._model_mapping]
        raise UsageError(f"{source.model_type} has no {name} head",
                         hint=f"its heads: {', '.join(has) or 'none'}")
    cls = getattr(transformers, name, None)
    if not (isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel)):
        close = difflib.get_close_matches(name, list(HEADS), n=2, cutoff=0.5)
        raise UsageError(
            f"unknown head {name!r}",
            hint=(f"did you mean {', '.join(close)}? " if close else "")
            + f"heads: {', '.join(HEADS)}, or a transformers class name (BertForMaskedLM)")
    return cls, []


def entry(target: str, kwargs: dict[str, Any]) -> ZooEntry:
    """The zoo entry for ``hf:TARGET``."""
    overrides = dict(kwargs)
    head = overrides.pop("head", None)
    if head is not None and not isinstance(head, str):
        raise UsageError(f"--arg head={head!r}: a head name", hint=f"one of {', '.join(HEADS)}")
    if not target:
        raise UnknownModelError("hf: names no model",
                                hint="hf:MODEL_TYPE (hf:bert), hf:PATH or hf:ORG/NAME")
    with offline():
        transformers = _transformers()
        source = _locate(target, transformers)
        config_class = transformers.CONFIG_MAPPING[source.model_type]
        data = _apply_overrides(source, config_class, overrides)
        try:
            config = config_class.from_dict(data) if data else config_class()
        except Exception as exc:
            raise ModelLoadError(f"cannot make a {config_class.__name__} from "
                                 f"{source.where}: {_first_line(exc)}") from None
        cls, notes = _model_class(transformers, config, head, source)
    saved = source.config.get("torch_dtype") or source.config.get("dtype")
    if isinstance(saved, str) and saved != "float32":
        notes.append(f"the config's weights are {saved}; byte counts follow --dtype "
                     "(float32 when not given)")

    def factory() -> torch.nn.Module:
        with offline():
            try:
                model = cls._from_config(config)
            except Exception as exc:
                raise ModelLoadError(f"building {cls.__name__} raised "
                                     f"{type(exc).__name__}: {_first_line(exc)}") from None
        assert isinstance(model, torch.nn.Module)
        return model

    specs = default_inputs(cls, config)
    return ZooEntry(
        name=f"hf:{target}", source="huggingface", factory=factory, default_inputs=specs,
        description=f"{cls.__name__} from {source.where}", task=_task(specs),
        cpu_fallback=False,
        extra={"hf_config": config, "hf_class": cls.__name__, "build_notes": notes},
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _task(specs: tuple[InputSpec, ...]) -> str:
    names = {s.name for s in specs}
    if "pixel_values" in names:
        return "multimodal" if "input_ids" in names else "vision"
    if names & {"input_features", "input_values"}:
        return "speech"
    return "text"


def _size(value: Any, default: int) -> int:
    if isinstance(value, (list, tuple)) and value:
        value = value[0]
    return int(value) if isinstance(value, int) and value > 0 else default


def _positions(config: Any, *names: str) -> int:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return TEXT_TOKENS


def default_inputs(cls: Any, config: Any) -> tuple[InputSpec, ...]:
    """Per modality: text 128 token ids (fewer when the position table is shorter), vision
    ``pixel_values`` at the config's image size, speech ``input_features`` (Whisper's
    mel bins × 2·max_source_positions frames) or ``input_values`` (one second at 16 kHz);
    an encoder-decoder adds ``decoder_input_ids``."""
    params = inspect.signature(cls.forward).parameters
    main = getattr(cls, "main_input_name", "input_ids")
    text = getattr(config, "text_config", None) or config
    vision = getattr(config, "vision_config", None) or config
    specs: list[InputSpec] = []
    if main == "input_ids" and "input_ids" in params:
        length = min(TEXT_TOKENS, _positions(text, "max_position_embeddings", "n_positions"))
        specs.append(InputSpec((length,), "int64", "input_ids"))
    if main == "pixel_values" or ("pixel_values" in params and vision is not config):
        size = _size(getattr(vision, "image_size", None), 224)
        channels = _size(getattr(vision, "num_channels", None), 3)
        specs.append(InputSpec((channels, size, size), "float32", "pixel_values"))
    if main == "input_features":
        bins = _size(getattr(config, "num_mel_bins", None), 80)
        frames = 2 * _size(getattr(config, "max_source_positions", None), 1500)
        specs.append(InputSpec((bins, frames), "float32", "input_features"))
    if main == "input_values":
        specs.append(InputSpec((16000,), "float32", "input_values"))
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in params:
        length = min(TEXT_TOKENS, _positions(config, "max_target_positions",
                                             "max_position_embeddings", "n_positions"))
        specs.append(InputSpec((length,), "int64", "decoder_input_ids"))
    return tuple(specs)


def for_decode(kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """``--decode`` counts a causal LM: its head unless another is asked for."""
    return {"head": "causal-lm", **(kwargs or {})}


# -- one decoding step with a KV cache ------------------------------------------------------


@dataclass(frozen=True)
class DecodeShape:
    layers: int
    kv_heads: int
    head_dim: int


def decode_shape(config: Any) -> DecodeShape:
    """Layers, key/value heads and head size of a decoder-only config."""
    if getattr(config, "is_encoder_decoder", False):
        raise UsageError("--decode counts decoder-only causal LMs; this is an encoder-decoder",
                         hint="count the decoder's prefill with --input decoder_input_ids=N:int64")
    text = getattr(config, "text_config", None) or config
    layers = getattr(text, "num_hidden_layers", None)
    heads = getattr(text, "num_attention_heads", None)
    hidden = getattr(text, "hidden_size", None)
    if not all(isinstance(v, int) and v > 0 for v in (layers, heads, hidden)):
        raise UsageError(f"--decode: cannot read layers and heads from {type(config).__name__}")
    assert isinstance(layers, int) and isinstance(heads, int) and isinstance(hidden, int)
    kv = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or hidden // heads
    return DecodeShape(layers, int(kv), int(head_dim))


def decode_arguments(model: torch.nn.Module, *, batch: int, context: int, dtype: torch.dtype,
                     device: str | torch.device) -> tuple[dict[str, Any], int]:
    """Keyword arguments of one decoding step (one new token per sequence, a KV cache
    holding ``context`` tokens), and the cache's bytes before the step."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(model, "forward"):
        raise UsageError("--decode needs a transformers model (one with a .config)")
    shape = decode_shape(config)
    with offline():
        from transformers import DynamicCache

        cache = DynamicCache(config=config)
        for index in range(shape.layers):
            keys = torch.empty(batch, shape.kv_heads, context, shape.head_dim, dtype=dtype,
                               device=device)
            cache.update(keys, torch.empty_like(keys), index)
    cache_bytes = 0
    for layer in getattr(cache, "layers", []):
        for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if isinstance(tensor, torch.Tensor):
                cache_bytes += tensor.numel() * tensor.element_size()
    params = inspect.signature(model.forward).parameters
    keyword = "cache" if "cache" in params else "past_key_values"
    ids = torch.zeros(batch, 1, dtype=torch.int64, device=device)
    return {"input_ids": ids, keyword: cache, "use_cache": True}, cache_bytes
