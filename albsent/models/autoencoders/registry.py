"""Autoencoder registry: `AUTOENCODERS` (albsent.registry.Registry); `@AUTOENCODERS.register("lstm")`
on an Autoencoder class. Importing this package registers every model."""

from __future__ import annotations

from albsent.registry import Registry

AUTOENCODERS: Registry[type] = Registry("autoencoder")
get_autoencoder = AUTOENCODERS.get  # AUTOENCODERS[name], or "unknown autoencoder 'x'; known: ..."


def build_autoencoder(config, in_dim: int, out_index: list[int] | None = None, window: int = 15, target: str = "next"):
    """config: AutoencoderConfig -> an Autoencoder for windows (B, window, in_dim)."""
    cls = get_autoencoder(config.name)
    return cls(config, in_dim, list(range(in_dim)) if out_index is None else out_index, window, target)


def attach_points(config, in_dim: int, window: int = 15, target: str = "next") -> list:
    """The attachment points (name, dim, doc) of the model `config` describes, without training it.
    The sweep builds conditional spaces from these names."""
    return build_autoencoder(config, in_dim, None, window, target).attach_points()
