"""Real image data of the workers: scikit-learn's bundled 8x8 digits, styled and split into pools.

Nothing is downloaded: ``sklearn.datasets.load_digits`` ships with scikit-learn.

* Pixels are scaled to [0, 1] (float32); an image is a flat vector of 64 pixels.
* A *style* (``worker_config.STYLES``) is a deterministic transform of an image: the public styles
  (rotation, Gaussian noise with a fixed seed, inversion, blur, shift) that the cloud's broad
  pre-training pool covers, and the personalised styles (mirror, occluded middle rows, dilated
  strokes) that only the edges' private data has. Every style of every sample is
  precomputed once (``x_styled``), so serving and training only index arrays.
* Samples are split by index into disjoint pools, stratified by class: the cloud's public
  pre-training pool, a held-out test pool (to measure accuracy) and one private pool per edge.
* Access control: each tier gets a :class:`PoolView` of its own pool only; a view refuses
  indices outside its pool, so no code holding a view can read another tier's raw samples.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from gaisnet_env.worker_config import INPUT_DIM, N_CLASSES, STYLES

#: Standard deviation of the additive Gaussian noise of style "noise" (pixel units, pixels in [0, 1]).
NOISE_STD: float = 0.3
#: Shift of style "shift" in pixels: (down, right), zero fill.
SHIFT_PX: tuple[int, int] = (1, 2)
#: Rows blanked by style "occlude" (a horizontal bar over the digit's middle): [start, stop).
OCCLUDE_ROWS: tuple[int, int] = (3, 5)
#: Shares of every class's samples going to the public and the test pool (the rest is private).
PUBLIC_SHARE: float = 0.35
TEST_SHARE: float = 0.25
#: Seed of the fixed noise precomputed for the data set's style "noise" (independent of the split seed).
NOISE_SEED: int = 12345

_BLUR_KERNEL = torch.full((1, 1, 3, 3), 1.0 / 9.0)


def apply_style(x: torch.Tensor, style: int, gen: torch.Generator | None = None) -> torch.Tensor:
    """Apply one style to a batch of flat images ``x`` (N, 64), pixels in [0, 1]; returns a new tensor.

    ``gen`` draws the noise of style "noise" (required for that style only).
    """
    name = STYLES[style]
    if name == "clean":
        return x.clone()
    img = x.reshape(-1, 8, 8)
    if name == "rotate":
        out = torch.rot90(img, 1, dims=(1, 2))
    elif name == "noise":
        if gen is None:
            raise ValueError("style 'noise' needs a torch.Generator")
        noise = torch.randn(img.shape, generator=gen, dtype=x.dtype)
        out = (img + NOISE_STD * noise).clamp_(0.0, 1.0)
    elif name == "invert":
        out = 1.0 - img
    elif name == "blur":
        out = F.conv2d(img.unsqueeze(1), _BLUR_KERNEL.to(x.dtype), padding=1).squeeze(1)
    elif name == "shift":
        dy, dx = SHIFT_PX
        out = torch.zeros_like(img)
        out[:, dy:, dx:] = img[:, : 8 - dy, : 8 - dx]
    elif name == "mirror":
        out = torch.flip(img, dims=(2,))
    elif name == "occlude":
        r0, r1 = OCCLUDE_ROWS
        out = img.clone()
        out[:, r0:r1, :] = 0.0
    elif name == "dilate":
        out = F.max_pool2d(img.unsqueeze(1), 3, stride=1, padding=1).squeeze(1)
    else:  # pragma: no cover - STYLES is fixed
        raise ValueError(f"unknown style {name!r}")
    return out.reshape(-1, INPUT_DIM).contiguous()


def apply_styles(x: torch.Tensor, styles: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Apply per-sample styles (``styles``: int64 (N,)) to flat images ``x`` (N, 64)."""
    out = torch.empty_like(x)
    for s in range(len(STYLES)):
        mask = styles == s
        if bool(mask.any()):
            out[mask] = apply_style(x[mask], s, gen)
    return out


@lru_cache(maxsize=1)
def _load_digits_base() -> tuple[np.ndarray, np.ndarray, np.ndarray, torch.Tensor, torch.Tensor]:
    """Digits as (x (N, 64) float32 in [0, 1], y (N,) int64, x_styled (n_styles, N, 64) float32,
    and torch tensors sharing the memory of x_styled and y). The arrays are read-only."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = (np.asarray(raw.data, dtype=np.float32) / 16.0).astype(np.float32)
    y = np.asarray(raw.target, dtype=np.int64)
    xt = torch.from_numpy(x)
    gen = torch.Generator().manual_seed(NOISE_SEED)
    styled = np.stack([apply_style(xt, s, gen).numpy() for s in range(len(STYLES))]).astype(np.float32)
    styled_t, y_t = torch.from_numpy(styled), torch.from_numpy(y)
    for arr in (x, y, styled):
        arr.setflags(write=False)
    return x, y, styled, styled_t, y_t


class PoolView:
    """Read access to the samples of one pool, and of no other.

    ``indices`` are global sample indices (sorted, int64). :meth:`get` refuses any index outside
    the pool with ``PermissionError``.
    """

    def __init__(self, name: str, indices: np.ndarray) -> None:
        _, y, _, x_t, y_t = _load_digits_base()
        self.name = name
        self._indices = np.sort(np.asarray(indices, dtype=np.int64))
        self._indices.setflags(write=False)
        self._member = np.zeros(y.shape[0], dtype=bool)
        self._member[self._indices] = True
        self.__x_t = x_t  # (n_styles, N, 64), shared storage: never written
        self.__y = y
        self.__y_t = y_t
        self.labels = y[self._indices]
        self.labels.setflags(write=False)

    @property
    def indices(self) -> np.ndarray:
        """Global indices of this pool's samples (read-only)."""
        return self._indices

    def __len__(self) -> int:
        return int(self._indices.shape[0])

    def contains(self, idx: np.ndarray) -> np.ndarray:
        """Boolean mask: which of the global indices ``idx`` belong to this pool."""
        idx = np.asarray(idx, dtype=np.int64)
        ok = (idx >= 0) & (idx < self._member.shape[0])
        out = np.zeros(idx.shape, dtype=bool)
        out[ok] = self._member[idx[ok]]
        return out

    def check(self, idx: np.ndarray) -> None:
        """Raise ``PermissionError`` if any index in ``idx`` lies outside this pool."""
        if not bool(np.all(self.contains(idx))):
            raise PermissionError(f"pool view {self.name!r} refuses indices outside its own pool")

    def get(self, idx: np.ndarray, style: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples ``idx`` (global indices in this pool) in styles ``style``.

        Returns (x (n, 64) float32, y (n,) int64)."""
        idx = np.array(idx, dtype=np.int64)  # copies: torch needs writable memory
        self.check(idx)
        it = torch.from_numpy(idx)
        st = torch.from_numpy(np.array(style, dtype=np.int64))
        return self.__x_t[st, it], self.__y_t[it]

    def labels_of(self, idx: np.ndarray) -> np.ndarray:
        """Labels of indices in this pool."""
        idx = np.asarray(idx, dtype=np.int64)
        self.check(idx)
        return self.__y[idx]


class DigitsData:
    """The digits data set split into disjoint pools for one system of ``n_edges`` edges.

    Attributes: ``x_styled`` (n_styles, N, 64) float32 in [0, 1]; ``y`` (N,) int64;
    ``public_idx``, ``test_idx`` (int64 arrays); ``private_idx`` (list of ``n_edges`` int64 arrays).
    The public and test pools depend on ``seed`` only (not on ``n_edges``), so pre-training is
    shared by systems of any size.
    """

    def __init__(self, n_edges: int, seed: int) -> None:
        if n_edges < 1:
            raise ValueError("n_edges must be >= 1")
        _, self.y, self.x_styled, _, _ = _load_digits_base()
        self.n_edges = int(n_edges)
        self.seed = int(seed)
        self.n_styles = len(STYLES)
        rng = np.random.default_rng([int(seed), 0xD161])
        public: list[np.ndarray] = []
        test: list[np.ndarray] = []
        private_parts: list[list[np.ndarray]] = [[] for _ in range(n_edges)]
        edge_offset = 0
        for c in range(N_CLASSES):
            idx_c = rng.permutation(np.flatnonzero(self.y == c))
            n_pub = int(round(PUBLIC_SHARE * idx_c.size))
            n_test = int(round(TEST_SHARE * idx_c.size))
            public.append(idx_c[:n_pub])
            test.append(idx_c[n_pub : n_pub + n_test])
            rest = idx_c[n_pub + n_test :]
            # round-robin over edges, continuing where the previous class stopped (balanced sizes)
            owners = (np.arange(rest.size) + edge_offset) % n_edges
            edge_offset = (edge_offset + rest.size) % n_edges
            for e in range(n_edges):
                private_parts[e].append(rest[owners == e])
        self.public_idx = np.sort(np.concatenate(public))
        self.test_idx = np.sort(np.concatenate(test))
        self.private_idx = [np.sort(np.concatenate(p)) for p in private_parts]
        # per-edge class index: sorted by class, offsets and counts (vectorised sampling)
        self._by_class: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for p in self.private_idx:
            order = p[np.argsort(self.y[p], kind="stable")]
            counts = np.bincount(self.y[order], minlength=N_CLASSES)
            offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
            self._by_class.append((order, counts, offsets))
        # the same, stacked over edges (batched sampling): orders concatenated, per-edge start
        self._orders = np.concatenate([o for o, _, _ in self._by_class])
        self._order_start = np.concatenate([[0], np.cumsum([o.size for o, _, _ in self._by_class])[:-1]])
        self._counts = np.stack([c for _, c, _ in self._by_class])  # (E, 10)
        self._offsets = np.stack([o for _, _, o in self._by_class]) + self._order_start[:, None]

    # ------------------------------------------------------------------ views
    def public_view(self) -> PoolView:
        """The cloud's view: the public pre-training pool."""
        return PoolView("public", self.public_idx)

    def test_view(self) -> PoolView:
        """The measurement view: the held-out test pool (used only to score accuracy)."""
        return PoolView("test", self.test_idx)

    def private_view(self, edge: int) -> PoolView:
        """Edge ``edge``'s view: its private pool."""
        return PoolView(f"private[{edge}]", self.private_idx[edge])

    # --------------------------------------------------------------- sampling
    def sample_private(
        self,
        edge: int,
        class_mix: np.ndarray,
        style_mix: np.ndarray,
        n: int,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` samples (with replacement) of edge ``edge``'s private pool.

        Classes follow ``class_mix`` ((10,) probabilities) restricted to the classes the pool holds
        (renormalised; uniform over the held classes if the mix puts no mass on them); styles follow
        ``style_mix`` ((n_styles,) probabilities). Returns (global indices int64 (n,), styles int64 (n,)).
        """
        order, counts, offsets = self._by_class[edge]
        p = np.asarray(class_mix, dtype=np.float64) * (counts > 0)
        if p.sum() <= 0:
            p = (counts > 0).astype(np.float64)
        p = p / p.sum()
        cls = rng.choice(N_CLASSES, size=n, p=p)
        pick = offsets[cls] + (rng.random(n) * counts[cls]).astype(np.int64)
        ps = np.asarray(style_mix, dtype=np.float64)
        ps = ps / ps.sum()
        style = rng.choice(self.n_styles, size=n, p=ps).astype(np.int64)
        return order[pick].astype(np.int64), style

    def sample_private_batch(
        self,
        edges: np.ndarray,
        class_mix: np.ndarray,
        style_mix: np.ndarray,
        n: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`sample_private` for several edges at once, bit for bit the same draws as calling it for
        ``edges[0]``, ``edges[1]``, ... in turn with the same ``rng`` (one ``rng.random`` call of the
        same length: ``Generator.choice`` with ``p`` inverts the normalised CDF of one uniform per draw).

        ``class_mix`` (k, 10) and ``style_mix`` (k, n_styles) are the mixes of the ``k`` edges, ``n``
        (k,) the draws per edge. Returns (global indices int64 (sum n,), styles int64 (sum n,), the
        edge of each draw (sum n,)), edge by edge in the order of ``edges``.
        """
        n = np.asarray(n, dtype=np.int64)
        return self.pick_private(edges, class_mix, style_mix, n, rng.random(3 * int(n.sum())))

    def pick_private(
        self, edges: np.ndarray, class_mix: np.ndarray, style_mix: np.ndarray, n: np.ndarray, u: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`sample_private_batch` from its uniforms ``u`` (``3 * n.sum()``: per edge of ``edges`` in
        turn its ``n`` class draws, ``n`` picks, ``n`` styles). The native vector env concatenates its
        copies' uniforms (each drawn from its copy's generator) and picks them all at once."""
        edges = np.asarray(edges, dtype=np.int64)
        n = np.asarray(n, dtype=np.int64)
        counts = self._counts[edges]  # (k, 10)
        held = counts > 0
        p = np.asarray(class_mix, dtype=np.float64) * held
        tot = p.sum(axis=1, keepdims=True)
        p = np.where(tot > 0, p, held.astype(np.float64))
        p = p / p.sum(axis=1, keepdims=True)
        cdf_c = p.cumsum(axis=1)
        cdf_c /= cdf_c[:, -1:]
        ps = np.asarray(style_mix, dtype=np.float64)
        ps = ps / ps.sum(axis=1, keepdims=True)
        cdf_s = ps.cumsum(axis=1)
        cdf_s /= cdf_s[:, -1:]
        total = int(n.sum())
        row = np.repeat(np.arange(edges.size), n)  # position in ``edges`` of each draw
        start = np.cumsum(n) - n
        nr = n[row]
        pos = 3 * start[row] + (np.arange(total) - start[row])  # per edge: n classes, n picks, n styles
        # searchsorted(cdf, u, side="right") == number of cdf entries <= u
        cls = (cdf_c[row] <= u[pos][:, None]).sum(axis=1)
        pick = self._offsets[edges[row], cls] + (u[pos + nr] * counts[row, cls]).astype(np.int64)
        style = (cdf_s[row] <= u[pos + 2 * nr][:, None]).sum(axis=1).astype(np.int64)
        return self._orders[pick].astype(np.int64), style, edges[row]
