"""Settings of the real model workers (the scenario's ``workers:`` section).

Every field has a default; a scenario YAML overrides any subset. Sizes are counts of
samples or neurons, learning rates are plain SGD/Adam step sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Input styles a domain can mix (deterministic transforms of the 8x8 digit images).
STYLES: tuple[str, ...] = ("clean", "rotate", "noise", "invert", "blur", "shift")
#: Number of digit classes.
N_CLASSES: int = 10
#: Flattened input size of a digit image (8 x 8 pixels).
INPUT_DIM: int = 64
#: Knowledge operations, in the order of the action's second component (0 = none).
OPERATIONS: tuple[str, ...] = ("none", "relay_down", "finetune", "relay_up", "relay_to_end")
#: Tiers, in the order of the action's first component (the route).
TIERS: tuple[str, ...] = ("end", "edge", "cloud")


@dataclass
class WorkerConfig:
    """Architecture and training settings of the cloud, edge and end workers."""

    # architectures (hidden units of the MLPs)
    teacher_hidden: int = field(default=256, metadata={"min": 8, "max": 4096})
    edge_hidden: int = field(default=64, metadata={"min": 4, "max": 1024})
    end_hidden: int = field(default=24, metadata={"min": 4, "max": 1024})
    generator_latent: int = field(default=8, metadata={"min": 2, "max": 128})
    generator_hidden: int = field(default=256, metadata={"min": 8, "max": 4096})
    edge_generator_hidden: int = field(default=64, metadata={"min": 8, "max": 1024})
    lora_rank: int = field(default=4, metadata={"min": 1, "max": 64})
    # pre-training at the cloud (public pool only)
    pretrain_epochs: int = field(default=60, metadata={"min": 1, "max": 1000})
    pretrain_lr: float = field(default=0.003, metadata={"min": 1e-6, "max": 1.0})
    pretrain_batch_size: int = field(default=64, metadata={"min": 1, "max": 4096})
    reference_hidden: int = field(default=128, metadata={"min": 8, "max": 4096})
    # knowledge operations
    feedback_buffer: int = field(default=256, metadata={"min": 8, "max": 100_000})
    finetune_epochs: int = field(default=4, metadata={"min": 1, "max": 100})
    finetune_lr: float = field(default=0.01, metadata={"min": 1e-6, "max": 1.0})
    batch_size: int = field(default=32, metadata={"min": 1, "max": 4096})
    relay_down_samples: int = field(default=256, metadata={"min": 8, "max": 100_000})
    relay_down_variant: str = field(default="ship_samples", metadata={"choices": ("ship_samples", "ship_adapter")})
    relay_up_samples: int = field(default=512, metadata={"min": 8, "max": 100_000})
    relay_to_end_samples: int = field(default=256, metadata={"min": 8, "max": 100_000})
    distill_epochs: int = field(default=4, metadata={"min": 1, "max": 100})
    distill_temperature: float = field(default=2.0, metadata={"min": 0.1, "max": 20.0})
    distill_lr: float = field(default=0.01, metadata={"min": 1e-6, "max": 1.0})
    cloud_lr: float = field(default=0.001, metadata={"min": 1e-6, "max": 1.0})
    cloud_batch_size: int = field(default=128, metadata={"min": 1, "max": 4096})
    relay_up_public_share: float = field(default=0.5, metadata={"min": 0.0, "max": 4.0})
    generate_eval_samples: int = field(default=64, metadata={"min": 4, "max": 10_000})
