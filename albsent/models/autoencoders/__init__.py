"""Next-frame autoencoders for unsupervised pretraining (Latent Sentiment paper).

Registered models: dense, dense_per_feature, rnn, lstm, mlstm, conv_rnn, conv_lstm,
conv_mlstm, seq2seq. See base.py for the interface (targets, taps, attachment points).
"""

from albsent.models.autoencoders import conv, dense, recurrent, seq2seq  # noqa: F401  (registers)
from albsent.models.autoencoders.base import TARGETS, AttachPoint, Autoencoder
from albsent.models.autoencoders.cells import MLSTMCell
from albsent.models.autoencoders.config import AutoencoderConfig
from albsent.models.autoencoders.registry import AUTOENCODERS, attach_points, build_autoencoder, get_autoencoder

__all__ = ["AUTOENCODERS", "TARGETS", "AttachPoint", "Autoencoder", "AutoencoderConfig", "MLSTMCell",
           "attach_points", "build_autoencoder", "get_autoencoder"]
