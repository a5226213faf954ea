"""Classifiers, registered by name: logreg, sklearn_logreg, svm_rbf, svm_linear, mlp, bilstm_attn (+ LayerSum for
`ssl:ALIAS:all` specs). `build_model(name, input_dim, n_classes, hparams, n_layers=None)`."""

from albsent.models import bilstm_attn, logreg, mlp, svm  # noqa: F401  (registration)
from albsent.models.layer_sum import LayerSum
from albsent.models.registry import MODEL_HPARAMS, MODELS, build_model, check_compatible, get_model

__all__ = ["MODELS", "MODEL_HPARAMS", "LayerSum", "build_model", "check_compatible", "get_model"]
