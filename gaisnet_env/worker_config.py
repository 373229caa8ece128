"""Settings of the real model workers (the scenario's ``workers:`` section).

Every field has a default; a scenario YAML overrides any subset. Sizes are counts of
samples or neurons, learning rates are plain SGD/Adam step sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Styles of the cloud's broad public pre-training pool: the domains the "foundation" model knows.
PUBLIC_STYLES: tuple[str, ...] = ("clean", "rotate", "noise", "invert", "blur", "shift")
#: Personalised styles: only the edges' private data has them; the cloud never sees them in pre-training
#: and cannot render them when it synthesises (only relay_up can teach them to the cloud).
PERSONAL_STYLES: tuple[str, ...] = ("mirror", "occlude", "dilate")
#: Input styles a domain can mix (deterministic transforms of the 8x8 digit images).
STYLES: tuple[str, ...] = PUBLIC_STYLES + PERSONAL_STYLES
#: Number of digit classes.
N_CLASSES: int = 10
#: Flattened input size of a digit image (8 x 8 pixels).
INPUT_DIM: int = 64
#: Knowledge operations, in the order of the action's second component (0 = none).
OPERATIONS: tuple[str, ...] = ("none", "relay_down", "finetune", "relay_up", "relay_to_end")
#: Tiers, in the order of the action's first component (the route).
TIERS: tuple[str, ...] = ("end", "edge", "cloud")


#: Settings of how the training runs, not of what it learns (results equal to float rounding): a fast-path
#: calibration fitted under one value holds for the others.
ENGINE_FIELDS: frozenset[str] = frozenset({"batched_ops", "device"})


@dataclass
class WorkerConfig:
    """Architecture and training settings of the cloud, edge and end workers."""

    # architectures (hidden units of the MLPs)
    teacher_hidden: int = field(default=256, metadata={"min": 8, "max": 4096})
    edge_hidden: int = field(default=128, metadata={"min": 4, "max": 1024})
    end_hidden: int = field(default=24, metadata={"min": 4, "max": 1024})
    generator_latent: int = field(default=8, metadata={"min": 2, "max": 128})
    generator_hidden: int = field(default=256, metadata={"min": 8, "max": 4096})
    edge_generator_hidden: int = field(default=64, metadata={"min": 8, "max": 1024})
    lora_rank: int = field(default=16, metadata={"min": 1, "max": 64})
    #: rank of the edge generator's LoRA adapter (its output layer carries a full delta)
    generator_lora_rank: int = field(default=16, metadata={"min": 1, "max": 64})
    # pre-training at the cloud (public pool only)
    pretrain_epochs: int = field(default=60, metadata={"min": 1, "max": 1000})
    pretrain_lr: float = field(default=0.003, metadata={"min": 1e-6, "max": 1.0})
    pretrain_batch_size: int = field(default=64, metadata={"min": 1, "max": 4096})
    reference_hidden: int = field(default=256, metadata={"min": 8, "max": 4096})
    #: share of the public pool (per class, clean style only) that the edges' base classifier and the end
    #: devices' tiny model pre-train on: the edges start from a base that has seen less than the cloud
    edge_base_share: float = field(default=0.3, metadata={"min": 0.01, "max": 1.0})
    # knowledge operations
    #: labelled feedback samples an edge keeps (the most recent ones; ~40 epochs of metro's labels)
    feedback_buffer: int = field(default=128, metadata={"min": 8, "max": 100_000})
    finetune_epochs: int = field(default=4, metadata={"min": 1, "max": 100})
    finetune_lr: float = field(default=0.01, metadata={"min": 1e-6, "max": 1.0})
    batch_size: int = field(default=32, metadata={"min": 1, "max": 4096})
    #: synthetic samples per relay_down (the cloud generates and labels them; the edge distils)
    relay_down_samples: int = field(default=256, metadata={"min": 8, "max": 100_000})
    #: epochs of the edge's distillation on the relayed samples
    relay_down_epochs: int = field(default=4, metadata={"min": 1, "max": 100})
    relay_down_variant: str = field(default="ship_samples", metadata={"choices": ("ship_samples", "ship_adapter")})
    relay_up_samples: int = field(default=512, metadata={"min": 8, "max": 100_000})
    relay_to_end_samples: int = field(default=256, metadata={"min": 8, "max": 100_000})
    distill_epochs: int = field(default=4, metadata={"min": 1, "max": 100})
    distill_temperature: float = field(default=2.0, metadata={"min": 0.1, "max": 20.0})
    distill_lr: float = field(default=0.01, metadata={"min": 1e-6, "max": 1.0})
    cloud_lr: float = field(default=0.001, metadata={"min": 1e-6, "max": 1.0})
    cloud_batch_size: int = field(default=128, metadata={"min": 1, "max": 4096})
    relay_up_public_share: float = field(default=0.5, metadata={"min": 0.0, "max": 4.0})
    #: relay_down: weight lambda of the cross-entropy on the edge's own feedback buffer added to the
    #: distillation loss (KD(synthetic) + lambda * CE(local)), so cloud knowledge is added without erasing
    #: what the edge learnt from its own labels; 0 = pure data-free distillation, as the papers describe
    #: (``benchmarks/knowledge_flow.py`` measures both). Applies where the edge trains (``ship_samples``);
    #: the cloud never sees private samples, so ``ship_adapter`` skips the term.
    relay_down_local_weight: float = field(default=1.0, metadata={"min": 0.0, "max": 100.0})
    #: relay_down: keep only synthetic samples whose teacher top-class probability (at T=1) is at least
    #: this (pseudo-label confidence filter); 0 keeps all.
    relay_down_min_confidence: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})
    #: relay_down: distil only the samples on which the teacher's top-class probability exceeds the edge
    #: model's own (selective distillation of what the edge does not yet know; the edge runs its model on
    #: the received samples, or the cloud on the sent adapter with ``ship_adapter``).
    relay_down_relative: bool = False
    #: relay_up: how the cloud builds its distillation targets from the edges' latest adapters:
    #: "fedavg" = one sample-weighted average of the adapter deltas labels samples of the union domain;
    #: "experts" = each edge's adapter labels samples of its own reported domain (its share of the samples
    #: proportional to its sample count), the "bottom-up" distillation from edge experts.
    relay_up_aggregation: str = field(default="experts", metadata={"choices": ("fedavg", "experts")})
    #: the cloud classifier: "dense" = one teacher MLP that relay_up distils the edge experts into;
    #: "mixture" = BAIM's bottom-up big model, a gated mixture of the teacher and the relayed edge experts
    #: (edge base + each edge's latest uploaded adapter) whose small gate relay_up trains on synthetic (and
    #: public) samples only, the experts frozen
    cloud_model: str = field(default="dense", metadata={"choices": ("dense", "mixture")})
    #: hidden units of the mixture's gate MLP ([64, gate_hidden, 1 + n_edges])
    gate_hidden: int = field(default=32, metadata={"min": 2, "max": 1024})
    #: Adam step size of the mixture's gate
    gate_lr: float = field(default=0.03, metadata={"min": 1e-6, "max": 1.0})
    #: epochs of the gate's training per relay_up round
    gate_epochs: int = field(default=8, metadata={"min": 1, "max": 200})
    #: whether the relays carry generator knowledge: relay_down distils the edge generator's adapter from
    #: the cloud generator on the relayed samples, and relay_up carries the edge generator's adapter up so
    #: the cloud renders (and learns) styles only edges see. False: generators only learn from the edge's
    #: own feedback (finetune), and relay_up's synthetic samples are in the styles the cloud knows
    generator_relay: bool = True
    #: the batched training engine (opt-in): the classifier training of the finetunes, relay_downs and
    #: relay_to_ends started in one epoch is trained as one batch per kind (:mod:`gaisnet_env.op_batching`;
    #: the same random draws; weights equal the one-by-one run's to float rounding, about 1e-7, and an epoch
    #: with one op of each kind is bit-identical). The rounding can flip a later prediction, so episodes
    #: with two ops of a kind in one epoch may differ from the default one-by-one run (each is
    #: deterministic). city's random policy: 1.12x per step (benchmarks/results/issue13_targets.md)
    batched_ops: bool = False
    #: where the training kernels run (classifiers, one by one and stacked, and generators): "cpu", "cuda",
    #: "cuda:N" or "auto" (a GPU when present, else the CPU). State, tables and inference stay on the CPU;
    #: the draws are the CPU's, so a GPU run draws the same samples but rounds differently
    #: (:mod:`gaisnet_env.models.compute_device`)
    device: str = field(default="cpu", metadata={"doc": "cpu, cuda, cuda:N or auto"})
    #: Adam step size of generator training (edge adapters and the cloud generator)
    generator_lr: float = field(default=0.01, metadata={"min": 1e-6, "max": 1.0})
    #: epochs of generator training in every op that trains a generator (finetune, relay_down, relay_up)
    generator_epochs: int = field(default=10, metadata={"min": 1, "max": 200})
    #: mini-batch of generator training
    generator_batch_size: int = field(default=64, metadata={"min": 1, "max": 4096})
    #: generated samples per (style, class) with which the judge scores a generator's quality table
    generate_eval_samples: int = field(default=32, metadata={"min": 4, "max": 10_000})
