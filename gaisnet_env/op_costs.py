"""What a knowledge operation's compute is made of, and what the env charges for each part.

A started operation reports its compute as a list of :class:`OpWork` parts (``OpResult.work``): which
model does what (generate, label, train, aggregate), where it runs (the edge or the cloud), on how many
samples, and the FLOPs our small worker model really counted for it. The env charges every part with the
scenario's **declared reference profile of the model that does it** (``reference_models``, per tier):

=====================  =====================================================================================
kind                   FLOPs per sample charged
=====================  =====================================================================================
``infer``              the classifier's ``inference_flops``
``train``              its ``train_flops_per_sample``; if not declared, 3 x ``inference_flops`` (a forward
                       and backward pass ~ 3 forwards: Kaplan et al., "Scaling Laws for Neural Language
                       Models", 2020, sec. 2.1)
``generate``           the generator's ``generate_flops``
``generator_train``    its ``generator_train_flops_per_sample``; if not declared, 3 x ``generate_flops``
                       (fitting the generator on real samples; same rule). Declare it for iterative
                       generators: a diffusion training step runs the U-Net once, not once per sampling step
``generator_distil``   the same figure (data-free distillation of the generator onto a teacher's outputs
                       for the same latents)
``counted``            the counted FLOPs (parts no reference model declares: the mixture's gate, the
                       FedAvg aggregation)
=====================  =====================================================================================

A part whose tier declares no reference figure (e.g. the ``tiny`` scenario, which declares none) is
charged its counted FLOPs. So the relay_to_end distillation is charged at the *end* model's profile
although it runs on the edge, and the edge experts that label relay_up's samples at the cloud are charged
at the *edge* profile. Plug-in workers whose results carry no ``work`` are charged their ``flops`` as is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: model -> the tier whose reference profile declares its cost (None: always counted)
MODELS: dict[str, str | None] = {
    "cloud_classifier": "cloud",
    "edge_classifier": "edge",
    "end_classifier": "end",
    "cloud_generator": "cloud",
    "edge_generator": "edge",
    "gate": None,
    "aggregator": None,
}
KINDS = ("infer", "train", "generate", "generator_train", "generator_distil", "counted")
#: where op compute can run
SITES = ("edge", "cloud")
#: forward + backward ~ 3 forward passes per sample (Kaplan et al. 2020, sec. 2.1)
TRAIN_OVER_INFER = 3.0


@dataclass(frozen=True)
class OpWork:
    """One part of an operation's compute."""

    part: str  #: what it does, e.g. "generate", "label", "train", "aggregate", "distil_generator"
    tier: str  #: where it runs: "edge" or "cloud"
    model: str  #: which model does it: a key of MODELS
    kind: str  #: one of KINDS
    samples: float  #: samples processed (epochs x samples for training)
    flops: float  #: FLOPs our worker counted for the part

    def __post_init__(self) -> None:
        if self.tier not in SITES:
            raise ValueError(f"OpWork.tier: {self.tier!r}; expected one of {SITES}")
        if self.model not in MODELS:
            raise ValueError(f"OpWork.model: {self.model!r}; expected one of {tuple(MODELS)}")
        if self.kind not in KINDS:
            raise ValueError(f"OpWork.kind: {self.kind!r}; expected one of {KINDS}")


def declared_flops_per_sample(model: str, kind: str, refs: Any) -> float:
    """FLOPs per sample that the reference profile declares for ``model`` doing ``kind`` (0: none declared)."""
    tier = MODELS[model]
    ref = getattr(refs, tier, None) if (refs is not None and tier is not None) else None
    if ref is None or kind == "counted":
        return 0.0
    if model.endswith("classifier"):
        if kind == "infer":
            return float(ref.inference_flops)
        if kind == "train":
            return float(ref.train_flops_per_sample or TRAIN_OVER_INFER * ref.inference_flops)
        return 0.0
    if kind == "generate":
        return float(ref.generate_flops)
    if kind in ("generator_train", "generator_distil"):
        declared = float(getattr(ref, "generator_train_flops_per_sample", 0.0))
        return declared or TRAIN_OVER_INFER * float(ref.generate_flops)
    return 0.0


def charged_flops(work: OpWork, refs: Any) -> float:
    """FLOPs the env charges for one part: samples x the declared figure, else the counted FLOPs."""
    per = declared_flops_per_sample(work.model, work.kind, refs)
    return work.samples * per if per > 0.0 else work.flops


def charged_by_tier(work: list[OpWork], refs: Any) -> dict[str, float]:
    """Charged FLOPs of an operation per site ("edge", "cloud")."""
    out = dict.fromkeys(SITES, 0.0)
    for w in work:
        out[w.tier] += charged_flops(w, refs)
    return out


def counted_by_tier(work: list[OpWork]) -> dict[str, float]:
    """Counted FLOPs per tier ("end", "edge", "cloud"): ``OpResult.flops``."""
    out = {"end": 0.0, "edge": 0.0, "cloud": 0.0}
    for w in work:
        out[w.tier] += w.flops
    return out


def op_charge(res: Any, refs: Any) -> dict[str, float]:
    """Charged FLOPs per site of a started op ``res`` (an OpResult): from its ``work`` parts, or for a
    result without them (a plug-in worker), its counted ``flops`` with the end's added to the edge's."""
    work = getattr(res, "work", None)
    if work:
        return charged_by_tier(list(work), refs)
    fl = res.flops
    return {"edge": float(fl.get("edge", 0.0)) + float(fl.get("end", 0.0)), "cloud": float(fl.get("cloud", 0.0))}



# ------------------------------------------------------------------ what each op is made of
Part = Callable[[str, str, str, str, float], OpWork]  # (part, tier, model, kind, samples) -> OpWork


def finetune_work(cfg: Any, part: Part, n_feedback: int) -> list[OpWork]:
    """finetune at the edge: the classifier adapter and the generator adapter trained on the feedback."""
    return [part("train", "edge", "edge_classifier", "train", cfg.finetune_epochs * n_feedback),
            part("train_generator", "edge", "edge_generator", "generator_train", cfg.generator_epochs * n_feedback)]


def relay_down_work(cfg: Any, part: Part, cloud_label: Callable[[str, float], list[OpWork]], n_shipped: int,
                    n_kd: int, n_replay: int) -> list[OpWork]:
    """relay_down: the cloud generates ``relay_down_samples`` samples of the reported domain and labels them
    with its model; the adapter is distilled on the ``n_kd`` kept ones (plus one local batch per batch with
    a local-label weight) at the edge (``ship_adapter``: at the cloud); with ``generator_relay`` the edge
    generator replays ``n_replay`` samples of styles the cloud cannot render and is distilled on all."""
    n = cfg.relay_down_samples
    site = "cloud" if cfg.relay_down_variant == "ship_adapter" else "edge"
    work = [part("generate", "cloud", "cloud_generator", "generate", n), *cloud_label("label", n)]
    if cfg.relay_down_relative:  # selective distillation runs the edge model on the shipped samples
        work.append(part("select", site, "edge_classifier", "infer", n_shipped))
    n_loc = 0
    if cfg.relay_down_local_weight > 0.0 and cfg.relay_down_variant == "ship_samples":
        n_loc = -(-n_kd // cfg.batch_size) * cfg.batch_size  # one local batch per distillation batch
    work.append(part("train", site, "edge_classifier", "train", cfg.relay_down_epochs * (n_kd + n_loc)))
    if cfg.generator_relay:
        if n_replay:
            work.append(part("replay", site, "edge_generator", "generate", n_replay))
        work.append(part("distil_generator", site, "edge_generator", "generator_distil",
                         cfg.generator_epochs * (n + n_replay)))
    return work


def relay_up_work(cfg: Any, part: Part, cloud_label: Callable[[str, float], list[OpWork]],
                  cloud_train: Callable[[float], list[OpWork]], n_edge_rendered: int, generator_distilled: bool,
                  n_entries: int, adapter_params: int) -> list[OpWork]:
    """One federated round at the cloud: ``relay_up_samples`` synthetic samples rendered by the cloud
    generator (``n_edge_rendered`` by the uploaded edge generators, for styles the cloud cannot render),
    labelled by the edge experts (``fedavg``: by the weighted average of the ``n_entries`` stored adapters),
    the cloud model's own targets on them and on the public share, the cloud model trained
    (``cloud_train``), and where the edges' generators rendered unknown styles, the cloud generator
    distilled on them with replay of its own public outputs."""
    n_syn = cfg.relay_up_samples
    n_pub = int(round(cfg.relay_up_public_share * n_syn))
    work = [part("render", "cloud", "cloud_generator", "generate", n_syn - n_edge_rendered)]
    if n_edge_rendered:
        work.append(part("render", "cloud", "edge_generator", "generate", n_edge_rendered))
    if cfg.relay_up_aggregation == "fedavg":
        # weighted average of the adapter deltas: a multiply and an add per parameter and upload
        work.append(OpWork("aggregate", "cloud", "aggregator", "counted", n_entries, 2.0 * adapter_params * n_entries))
    work.append(part("label_experts", "cloud", "edge_classifier", "infer", n_syn))
    work += cloud_label("label", n_syn + n_pub)
    work += cloud_train(n_syn + n_pub)
    if generator_distilled:
        work.append(part("replay", "cloud", "cloud_generator", "generate", n_pub))
        work.append(part("distil_generator", "cloud", "cloud_generator", "generator_distil",
                         cfg.generator_epochs * (n_syn + n_pub)))
    return work


def relay_to_end_work(cfg: Any, part: Part) -> list[OpWork]:
    """relay_to_end at the edge: the edge model labels ``relay_to_end_samples`` feedback samples and the
    end model is distilled on them (charged at the end model's profile)."""
    n = cfg.relay_to_end_samples
    return [part("label", "edge", "edge_classifier", "infer", n),
            part("train", "edge", "end_classifier", "train", cfg.distill_epochs * n)]


__all__ = ["KINDS", "MODELS", "SITES", "TRAIN_OVER_INFER", "OpWork", "charged_by_tier", "charged_flops",
           "counted_by_tier", "declared_flops_per_sample", "finetune_work", "op_charge", "relay_down_work",
           "relay_to_end_work", "relay_up_work"]
