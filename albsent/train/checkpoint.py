"""A saved model ("bundle"): RUN/model.safetensors (weights) + RUN/model.json (everything
else: model name and dims, label map, feature spec and column dtypes, normalisation stats,
train config, the store's extract config, metrics). `predict` needs nothing more."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from albsent.errors import AlbsentError

FORMAT = "albsent-model"
VERSION = 1
WEIGHTS, META = "model.safetensors", "model.json"


class BundleError(AlbsentError):
    """A run folder has no usable saved model."""


@dataclass
class Bundle:
    state: dict[str, torch.Tensor]
    meta: dict = field(default_factory=dict)
    folder: str = ""  # where it was loaded from (for messages)

    @property
    def labels(self) -> list[str]:
        return list(self.meta["labels"])


def save_bundle(bundle: Bundle, folder: str | Path) -> Path:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in bundle.state.items()}
    save_file(state, str(folder / WEIGHTS), metadata={"format": FORMAT})
    meta = {"format": FORMAT, "version": VERSION, **bundle.meta}
    (folder / META).write_text(json.dumps(meta, indent=1, sort_keys=True))
    return folder


def load_bundle(folder: str | Path) -> Bundle:
    from safetensors.torch import load_file

    folder = Path(folder)
    for name in (META, WEIGHTS):
        if not (folder / name).is_file():
            raise BundleError(f"{folder}: no saved model ({name} missing); "
                              "expected the --out folder of `albsent train`")
    try:
        meta = json.loads((folder / META).read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{folder / META}: not valid JSON ({exc})") from exc
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise BundleError(f"{folder / META}: not an {FORMAT} v{VERSION} file "
                          f"(format={meta.get('format')}, version={meta.get('version')})")
    try:
        state = load_file(str(folder / WEIGHTS))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise BundleError(f"{folder / WEIGHTS}: cannot read weights ({exc})") from exc
    return Bundle(state, meta, str(folder))


def load_weights(model: torch.nn.Module, bundle: Bundle) -> torch.nn.Module:
    """model.load_state_dict(bundle.state), with a BundleError naming the file and the first
    differences when the weights do not fit the model that model.json describes."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for prefix, module in model.named_modules():  # modules whose buffer sizes come from their fit (KernelSVM)
        if hasattr(module, "fitted_shapes"):
            prefix = f"{prefix}." if prefix else ""
            want.update({prefix + k: shape for k, shape in module.fitted_shapes(bundle.state, prefix).items()})
    got = {k: tuple(v.shape) for k, v in bundle.state.items()}
    if want != got:
        diffs = [f"{k} is {list(got[k])}, expected {list(want[k])}" for k in want if k in got and got[k] != want[k]]
        diffs += [f"{k} missing" for k in want if k not in got] + [f"unexpected {k}" for k in got if k not in want]
        more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
        raise BundleError(f"{Path(bundle.folder, WEIGHTS)}: weights do not fit the model described in {META}: "
                          f"{'; '.join(diffs[:3])}{more}; were the weights replaced by another run's?")
    model.load_state_dict(bundle.state)
    return model


def bundle_model(bundle: Bundle) -> torch.nn.Module:
    """Rebuild the torch module of a bundle and load its weights (eval mode)."""
    from albsent.models import build_model

    m = bundle.meta["model"]
    model = build_model(m["name"], m["input_dim"], m["n_classes"], m["hparams"], m.get("n_layers"))
    return load_weights(model, bundle).eval()
