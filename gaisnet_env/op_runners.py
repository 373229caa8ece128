"""The knowledge operations of :class:`~gaisnet_env.workers.WorkerSystem` (relay_down, finetune,
relay_up as a federated round, relay_to_end): real training on the working modules, each returning its
:class:`~gaisnet_env.op_records.OpResult` (outcome, counted FLOPs, bytes, the parts of its compute) and
the pending weights. A mixin: the state it reads and writes is the system's."""

from __future__ import annotations

import numpy as np
import torch

from gaisnet_env import op_costs
from gaisnet_env.cloud_worker import _sample_categorical, _train
from gaisnet_env.models import (
    merged_forward,
    train_gate,
)
from gaisnet_env.op_records import REPORT_BYTES, OpResult, _finite, _Pending
from gaisnet_env.worker_config import INPUT_DIM, N_CLASSES, OPERATIONS, STYLES


class OpRunners:
    """The op runners and their cost accounting, mixed into :class:`~gaisnet_env.workers.WorkerSystem`."""

    def op_result(self, op: str, edge: int, n_feedback: int, n_shipped: int | None = None,
                  n_kd: int | None = None, *, n_replay: int | None = None, n_edge_rendered: int | None = None,
                  n_entries: int | None = None, round_size: int = 1) -> OpResult:
        """The cost of ``op`` at ``edge`` (its compute parts, counted FLOPs per tier, payload bytes, samples)
        with ``n_feedback`` samples in the edge's buffer. relay_down: ``n_shipped`` / ``n_kd`` samples left
        after the confidence filter / after both (default: all ``relay_down_samples``), ``n_replay`` edge
        generator replays (default: from the edge's domain report). relay_up: ``n_edge_rendered`` samples
        rendered by edge generators and ``n_entries`` stored uploads (default: from this edge's report and
        the store), ``round_size`` senders sharing the round. Used by the real operations and by the fast
        path (:mod:`gaisnet_env.surrogate`), so both charge the same."""
        cfg = self.config
        gen_adapter = self.gens.adapter_bytes if cfg.generator_relay else 0
        if op == "finetune":
            work = op_costs.finetune_work(cfg, self._part, n_feedback)
            return self._result(op, edge, f"adapter fine-tuned on {n_feedback} feedback samples", work,
                                samples=n_feedback)
        if op == "relay_down":
            n = cfg.relay_down_samples
            n_shipped = n if n_shipped is None else n_shipped
            n_kd = n_shipped if n_kd is None else n_kd
            n_replay = self._replay_count(self.domain_report(edge)[1]) if n_replay is None else n_replay
            work = op_costs.relay_down_work(cfg, self._part, self._cloud_label, n_shipped, n_kd, n_replay)
            if cfg.relay_down_variant == "ship_adapter":
                # the edge sends its current adapters with the report; the cloud trains them and ships them back
                return self._result(op, edge, "cloud distilled the edge adapter and shipped it", work,
                                    REPORT_BYTES + self.adapter_bytes + gen_adapter, self.adapter_bytes + gen_adapter,
                                    samples=n)
            # float32 samples (n, 64) and soft labels (n, 10); the generator distillation needs every
            # sample's latent too (and the pixels of those the confidence filter dropped)
            f32 = self._x_eval.element_size()
            shipped = n_shipped * (INPUT_DIM + N_CLASSES) * f32
            if cfg.generator_relay:
                shipped += n * self.gens.cloud.latent * f32 + (n - n_shipped) * INPUT_DIM * f32
            return self._result(op, edge, "cloud shipped synthetic samples and soft labels", work,
                                REPORT_BYTES, shipped, samples=n_shipped)
        if op == "relay_up":
            if n_edge_rendered is None:
                unknown = self._replay_count(self.domain_report(edge)[1], cfg.relay_up_samples)
                n_edge_rendered = unknown if cfg.relay_up_aggregation == "experts" and cfg.generator_relay else 0
            n_entries = len({*self._store, edge}) if n_entries is None else n_entries
            work = op_costs.relay_up_work(cfg, self._part, self._cloud_label, self._cloud_train, n_edge_rendered,
                                          n_edge_rendered > 0, n_entries, self.adapter_bytes // 4)
            res = self._result(op, edge, f"cloud aggregated edge adapters ({cfg.relay_up_aggregation}) and "
                               "distilled them into the cloud model", work, self.adapter_bytes + REPORT_BYTES
                               + gen_adapter, 0, samples=cfg.relay_up_samples
                               + int(round(cfg.relay_up_public_share * cfg.relay_up_samples)))
            res.share = 1.0 / round_size
            return res
        if op == "relay_to_end":
            work = op_costs.relay_to_end_work(cfg, self._part)
            return self._result(op, edge, "edge distilled its model into the end devices' model", work,
                                0, self._end.n_bytes, samples=cfg.relay_to_end_samples)
        raise ValueError(f"unknown operation {op!r}; expected one of {OPERATIONS[1:]}")

    @staticmethod
    def _result(op: str, edge: int, message: str, work: list[op_costs.OpWork], bytes_up: int = 0,
                bytes_down: int = 0, *, samples: int) -> OpResult:
        return OpResult(op, edge, True, message, flops=op_costs.counted_by_tier(work), bytes_up=int(bytes_up),
                        bytes_down=int(bytes_down), samples=int(samples), work=work)

    def _part(self, part: str, tier: str, model: str, kind: str, samples: float) -> op_costs.OpWork:
        """An op part with its counted FLOPs (samples x our worker's counted FLOPs per sample)."""
        site = model.split("_")[0]
        if model.endswith("classifier"):
            per = self._flops[{"cloud": "teacher"}.get(site, site)][0 if kind == "infer" else 1]
        elif model.endswith("generator"):
            per = self._flops["gen_" + site + "_distil"] if kind == "generator_distil" else (
                self._flops["gen_" + site][0 if kind == "generate" else 1])
        else:  # the mixture's gate
            per = self._flops[model][0 if kind == "infer" else 1]
        return op_costs.OpWork(part, tier, model, kind, float(samples), float(samples) * per)

    def _cloud_label(self, part: str, n: float) -> list[op_costs.OpWork]:
        """The cloud model's forward pass on ``n`` samples: the teacher, and for the mixture its gate and
        every edge's expert (as once all edges have relayed up)."""
        work = [self._part(part, "cloud", "cloud_classifier", "infer", n)]
        if self._mixture is not None:
            work += [self._part(part, "cloud", "gate", "infer", n),
                     self._part(part, "cloud", "edge_classifier", "infer", n * self.n_edges)]
        return work

    def _cloud_train(self, n: float) -> list[op_costs.OpWork]:
        """Training the cloud model on ``n`` samples: the dense teacher for ``distill_epochs``, or the
        mixture's gate for ``gate_epochs`` over the experts' outputs computed once."""
        cfg = self.config
        if self._mixture is None:
            return [self._part("train", "cloud", "cloud_classifier", "train", cfg.distill_epochs * n)]
        return [self._part("experts", "cloud", "cloud_classifier", "infer", n),
                self._part("experts", "cloud", "edge_classifier", "infer", n * self.n_edges),
                self._part("train_gate", "cloud", "gate", "train", cfg.gate_epochs * n)]

    def _replay_count(self, style_hist: np.ndarray, n: int | None = None) -> int:
        """Samples out of ``n`` (default ``relay_down_samples``) of the reported styles the cloud generator
        cannot render: what the edge's generator renders itself."""
        n = self.config.relay_down_samples if n is None else n
        h = np.where(self.gens.known, 0.0, np.asarray(style_hist, dtype=np.float64))
        return int(round(n * h.sum() / max(float(np.sum(style_hist)), 1e-12)))

    def _op_relay_down(self, edge: int) -> tuple[OpResult, _Pending | None]:
        cfg = self.config
        ch, sh, _ = self.domain_report(edge)
        n = cfg.relay_down_samples
        if self._cloud.known_share(sh) == 0.0:
            res = OpResult("relay_down", edge, False, "the cloud knows none of the reported styles: nothing to relay")
            return res, None
        # cloud: synthesise for the reported domain, label with the teacher's own knowledge
        x, y_syn, s_syn, z_syn = self._cloud.synthesise(ch, sh, n, self._gen)
        gen_batch = (z_syn, y_syn, s_syn, x)  # the edge generator distils the cloud's on all of them
        with torch.no_grad():
            logits = self._cloud_model()(x)
        soft = self._cloud.soft_labels(logits)
        t_conf = torch.softmax(logits, dim=1).amax(1)  # teacher's top-class probability at T=1
        if cfg.relay_down_min_confidence > 0.0:
            # only pseudo-labels the teacher is confident about are shipped and distilled
            keep = t_conf >= cfg.relay_down_min_confidence
            x, soft, t_conf = x[keep], soft[keep], t_conf[keep]
        n_shipped = int(x.shape[0])
        if cfg.relay_down_relative:
            # selective distillation: keep the samples the teacher is surer of than the edge model
            self._load_edge(edge)
            with torch.no_grad():
                keep = t_conf > torch.softmax(self._edge(x), dim=1).amax(1)
            x, soft = x[keep], soft[keep]
        n_kd = int(x.shape[0])
        anchor = None
        if cfg.relay_down_local_weight > 0.0 and cfg.relay_down_variant == "ship_samples":
            # local anchoring: CE on the edge's own feedback, one local batch per distillation batch
            idx, style = self._feedback(edge)
            x_loc, y_loc = self._views[edge].get(idx, style)
            anchor = (x_loc, y_loc, float(cfg.relay_down_local_weight))
        res = self.op_result("relay_down", edge, int(self._fb_count[edge]), n_shipped, n_kd)
        if not (_finite([x, soft])):
            return self._nan(res)
        if n_kd < n:
            res.message += f" ({n_kd} of {n} samples kept by the confidence filters)"
        new = self._train_classifier("edge", edge, x, soft, True, cfg.relay_down_epochs, cfg.distill_lr, anchor)
        gen_new = None
        if cfg.generator_relay:
            gen_new = self._distil_edge_generator(edge, ch, sh, gen_batch)
        if new is None or (cfg.generator_relay and gen_new is None):
            return self._nan(res)
        return res, _Pending("relay_down", "edge", new, gen_weights=gen_new)

    def _distil_edge_generator(self, edge: int, class_hist: np.ndarray, style_hist: np.ndarray,
                               relayed: tuple[torch.Tensor, ...]) -> list[torch.Tensor] | None:
        """relay_down's generator part: ``edge``'s generator adapter distilled onto the cloud generator's
        outputs ``relayed`` = (z, y, style, x), plus replay of its own current outputs for the reported
        styles the cloud cannot render (so it keeps what it learnt of them). Data-free."""
        h = np.where(self.gens.known, 0.0, np.asarray(style_hist, dtype=np.float64))
        n_rep = self._replay_count(style_hist)
        z, y, s, x = relayed
        if n_rep:
            y_r = _sample_categorical(class_hist, n_rep, self._gen)
            s_r = _sample_categorical(h, n_rep, self._gen)
            z_r, x_r = self.gens.load("edge", edge).sample(y_r, s_r, self._gen)
            z, y, s, x = torch.cat([z, z_r]), torch.cat([y, y_r]), torch.cat([s, s_r]), torch.cat([x, x_r])
        return self._train_generator(edge, True, z, y, s, x)

    def _op_finetune(self, edge: int) -> tuple[OpResult, _Pending | None]:
        cfg = self.config
        idx, style = self._feedback(edge)
        x, y = self._views[edge].get(idx, style)
        res = self.op_result("finetune", edge, int(x.shape[0]))
        new = self._train_classifier("edge", edge, x, y, False, cfg.finetune_epochs, cfg.finetune_lr)
        # the edge generator adapter learns the edge's own domain (personal styles included)
        gen_new = self._train_generator(edge, False, x, y, torch.from_numpy(style))
        if new is None or gen_new is None:
            return self._nan(res)
        return res, _Pending("finetune", "edge", new, gen_weights=gen_new)

    def _op_relay_up(self, edge: int) -> tuple[OpResult, _Pending | None]:
        return self._run_round([edge])[edge]

    def _upload(self, edge: int) -> tuple:
        """What ``edge`` sends up in relay_up (never raw samples): its classifier adapter's merged deltas,
        its FedAvg weight (the labelled samples it received since its last upload, not capped by the
        feedback buffer, so an edge that learnt from more data weighs more), its domain report (class and
        style histograms) and its generator adapter."""
        ch, sh, _ = self.domain_report(edge)
        deltas = self._edge.adapter_deltas(self._adapter(edge))
        gen_adapter = self.gens.adapter(edge) if self.config.generator_relay else None
        return (deltas, float(self._fb_new[edge]), ch, sh, gen_adapter)

    def _run_round(self, senders: list[int]) -> dict[int, tuple[OpResult, _Pending | None]]:
        """One federated round: the uploads of every edge of ``senders`` (checks done) join the cloud's
        store of each edge's latest upload, are aggregated once (``relay_up_aggregation``) and distilled
        once into the cloud model (the dense teacher, or the gate of the ``mixture``); styles that only the
        senders' generators can render are taught to the cloud generator. Every sender gets its cost and a
        pending result that shares the round's weights (the first commit makes them live, :meth:`commit_op`)."""
        cfg, cloud = self.config, self._cloud
        entries_new = {e: self._upload(e) for e in senders}
        store = {**self._store, **entries_new}
        x_syn, y_syn, s_syn, z_syn, logits_syn = self._round_samples(list(store.values()))
        x_pub, y_pub, s_pub = cloud.public_samples(int(round(cfg.relay_up_public_share * cfg.relay_up_samples)),
                                                   self._gen)
        x = torch.cat([x_syn, x_pub])
        with torch.no_grad():
            own = self._cloud_model()(x)
        n_syn = x_syn.shape[0]
        t = 1.0 if self._mixture is not None else None  # the gate fits the mixture's own probabilities at T = 1
        soft = torch.cat([cloud.selective_targets(own[:n_syn], logits_syn, t), cloud.soft_labels(own[n_syn:], t)])
        new = self._train_cloud_model(x, soft, store) if _finite([x, soft]) else None
        # the cloud generator learns the styles it could not render from the edges' generators (their outputs
        # in x_syn), replaying its own outputs (the rest of x_syn, and public classes and styles)
        unknown = torch.from_numpy(~self.gens.known)[s_syn]
        n_unknown = int(unknown.sum()) if cfg.relay_up_aggregation == "experts" and cfg.generator_relay else 0
        results = {}
        for e in senders:
            res = self.op_result("relay_up", e, int(self._fb_count[e]), n_edge_rendered=n_unknown, n_entries=len(store),
                                 round_size=len(senders))
            res.message = (f"cloud aggregated {len(store)} edge upload(s) ({cfg.relay_up_aggregation}) in a round of "
                           f"{len(senders)} sender(s) and distilled them into the {cfg.cloud_model} cloud model")
            results[e] = res
        learned = np.zeros(len(STYLES), dtype=bool)
        gen_new = None
        if new is not None and n_unknown:  # only edge generators can teach the cloud's an unknown style
            learned[np.unique(s_syn[unknown].numpy())] = True
            z_pub, x_own = self.gens.load("cloud").sample(y_pub, s_pub, self._gen)
            gen_new = self.gens.distil("cloud", 0, torch.cat([z_syn, z_pub]), torch.cat([y_syn, y_pub]),
                                       torch.cat([s_syn, s_pub]), torch.cat([x_syn, x_own]), self._gen)
        if new is None or (n_unknown and gen_new is None):
            return {e: self._nan(r) for e, r in results.items()}
        round_id = self._next_uid()
        return {e: (results[e], _Pending("relay_up", "cloud", new, entries_new[e], gen_new, learned,
                                         round=(round_id, tuple(senders)))) for e in senders}

    def _round_samples(self, entries: list[tuple]) -> tuple[torch.Tensor, ...]:
        """relay_up's synthetic samples (x, classes, styles, latents) and the edge experts' logits on them.
        ``experts``: each stored upload's adapter labels samples of its own reported domain (its share of
        the samples drawn by FedAvg weight), rendered by the cloud generator where it knows the style and by
        that edge's generator where it does not; ``fedavg``: the weighted average of the adapter deltas
        labels samples of the weighted union domain."""
        cfg, cloud = self.config, self._cloud
        w = np.array([e[1] for e in entries], dtype=np.float64)
        w = w / w.sum() if w.sum() > 0 else np.full(w.size, 1.0 / w.size)
        n_syn = cfg.relay_up_samples
        if cfg.relay_up_aggregation == "experts":
            expert = _sample_categorical(w, n_syn, self._gen)
            parts = []
            for k, e in enumerate(entries):
                m = int((expert == k).sum())
                if m:
                    xk, yk, sk, zk = cloud.synthesise(e[2], e[3], m, self._gen, edge_adapter=e[4])
                    with torch.no_grad():
                        parts.append((xk, yk, sk, zk, merged_forward(xk, cloud.edge_base, e[0])))
            return tuple(torch.cat(t) for t in zip(*parts, strict=True))
        agg = [sum(float(wk) * e[0][j] for wk, e in zip(w, entries, strict=True)) for j in range(len(entries[0][0]))]
        union_c = sum(wk * e[2].astype(np.float64) for wk, e in zip(w, entries, strict=True))
        union_s = sum(wk * e[3].astype(np.float64) for wk, e in zip(w, entries, strict=True))
        x, y, s, z = cloud.synthesise(union_c, union_s, n_syn, self._gen, edge_adapter=None)
        with torch.no_grad():
            return x, y, s, z, merged_forward(x, cloud.edge_base, agg)

    def _train_cloud_model(self, x: torch.Tensor, soft: torch.Tensor, store: dict[int, tuple]) -> list | None:
        """New weights of the cloud model distilled on (x, soft): the dense teacher's, or the mixture's
        gate (over the experts of ``store``); None if the guard tripped."""
        cfg = self.config
        if self._mixture is not None:
            model = self._cloud_model(store=store)
            ok = train_gate(model, x, soft, epochs=cfg.gate_epochs, lr=cfg.gate_lr, batch=cfg.cloud_batch_size,
                            gen=self._gen)
            new = model.gate.get_weights()
        else:
            self._load_teacher()
            if self._deferred is not None:  # the engine trains it with the other copies' rounds
                return self._defer_training("cloud", self._teacher.get_weights(), x, soft, True, cfg.distill_epochs,
                                            cfg.cloud_lr, None, cfg.cloud_batch_size)
            ok = _train(self._teacher, x, soft, soft=True, epochs=cfg.distill_epochs, lr=cfg.cloud_lr,
                        batch=cfg.cloud_batch_size, temperature=cfg.distill_temperature, gen=self._gen,
                        device=self.device)
            new = self._teacher.get_weights()
        return new if ok and _finite(new) else None

    def _op_relay_to_end(self, edge: int) -> tuple[OpResult, _Pending | None]:
        cfg = self.config
        idx, style = self._feedback(edge)
        n = cfg.relay_to_end_samples
        pos = torch.randint(idx.shape[0], (n,), generator=self._gen).numpy()
        x, _ = self._views[edge].get(idx[pos], style[pos])
        self._load_edge(edge)
        with torch.no_grad():
            soft = torch.softmax(self._edge(x) / cfg.distill_temperature, dim=1)
        res = self.op_result("relay_to_end", edge, idx.shape[0])
        if not _finite([soft]):
            return self._nan(res)
        new = self._train_classifier("end", edge, x, soft, True, cfg.distill_epochs, cfg.distill_lr)
        if new is None:
            return self._nan(res)
        return res, _Pending("relay_to_end", "end", new)

