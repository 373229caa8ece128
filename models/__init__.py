"""PyTorch models of the workers (installed as ``gaisnet_env.models``).

All models are float32 MLPs on CPU, initialised from explicit ``torch.Generator`` objects.
"""

from gaisnet_env.models.batched_training import draw_schedule, train_classifiers_batched, train_stack
from gaisnet_env.models.classifier_stack import ClassifierStack
from gaisnet_env.models.classifiers import (
    INPUT_CENTRE,
    LoRAClassifier,
    MLPClassifier,
    lora_logits,
    merged_forward,
    mlp_logits,
)
from gaisnet_env.models.flops import classifier_flops, count_flops, decoder_distil_flops, generator_flops
from gaisnet_env.models.layers import Dense, LoRADense
from gaisnet_env.models.mixture import MixtureClassifier, train_gate
from gaisnet_env.models.training import FusedAdam, classifier_gradients, train_classifier, trainable_parameters
from gaisnet_env.models.vae import (
    CVAE,
    LoRACVAE,
    distil_decoder,
    distil_gradients,
    elbo_gradients,
    train_vae,
    vae_trainable_parameters,
)

__all__ = [
    "CVAE",
    "INPUT_CENTRE",
    "ClassifierStack",
    "Dense",
    "FusedAdam",
    "LoRACVAE",
    "LoRAClassifier",
    "LoRADense",
    "MLPClassifier",
    "MixtureClassifier",
    "classifier_flops",
    "classifier_gradients",
    "count_flops",
    "distil_decoder",
    "draw_schedule",
    "distil_gradients",
    "decoder_distil_flops",
    "elbo_gradients",
    "generator_flops",
    "lora_logits",
    "merged_forward",
    "mlp_logits",
    "train_classifier",
    "train_classifiers_batched",
    "train_gate",
    "train_stack",
    "train_vae",
    "trainable_parameters",
    "vae_trainable_parameters",
]
