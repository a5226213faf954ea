"""Unsupervised pretraining (Latent Sentiment paper): windows of frame sequences, the
iteration-based next-frame training loop, run folders, and the frozen linear-probe protocol.
Ray-free: `pretrain(config, frames, on_step, out_dir)`, `probe(config, pretrained, data, on_step)`
and both at once, `pretrain_and_probe(config, frames, data, on_step)` (a sweep trial)."""

from albsent.pretrain.config import PretrainConfig, ProbeConfig, WindowConfig
from albsent.pretrain.experiment import pretrain_and_probe
from albsent.pretrain.io import Pretrained, load_pretrained
from albsent.pretrain.loop import PretrainResult, pretrain
from albsent.pretrain.probe import probe
from albsent.pretrain.windows import Windows

__all__ = ["PretrainConfig", "PretrainResult", "Pretrained", "ProbeConfig", "WindowConfig", "Windows",
           "load_pretrained", "pretrain", "pretrain_and_probe", "probe"]
