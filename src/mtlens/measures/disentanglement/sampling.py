"""disentanglement_lib's sampling of a ground-truth dataset, draw for draw, over an mtlens FactorDataset.

The reference (`SplitDiscreteStateSpace`, `GroundTruthData.sample`) treats some factors as latent and fills the
others when it renders observations; its `dsprites_full` keeps dSprites' single-valued colour out of the
latent factors (latent_factor_indices [1..5]). Here a factor is latent iff it has more than one value, and
every RandomState call of the reference is made in the same order with the same arguments:
- sample_factors(n): `randint(size_k, size=n)` for each latent factor k in order;
- observations of latent factors: `randint(size_k, size=n)` for each non-latent factor k in order
  (`sample_all_factors`; drawing from a single value consumes no random numbers, but the call is kept);
- `generate_batch_factor_code`: chunks of `batch_size` points, each chunk factors then observations.
The plans return flat image indices (what the encoder needs) and latent factors (what the metrics score).
"""

from __future__ import annotations

import numpy as np

from mtlens.errors import MtlensError


class ReferenceSampler:
    """Samples latent factors and observation indices of a FactorDataset with the reference's draws."""

    def __init__(self, dataset: object) -> None:
        sizes = tuple(int(s) for s in dataset.factor_sizes)
        self.dataset = dataset
        self.factor_sizes = sizes
        self.latent = [k for k, s in enumerate(sizes) if s > 1]
        self.observed = [k for k, s in enumerate(sizes) if s <= 1]
        if not self.latent:
            raise MtlensError(f"{getattr(dataset, 'name', 'dataset')}: no factor has more than one value; nothing to measure")
        names = tuple(getattr(dataset, "factor_names", ())) or tuple(f"factor_{k}" for k in range(len(sizes)))
        self.latent_names = tuple(names[k] for k in self.latent)

    @property
    def num_factors(self) -> int:
        """Returns the number of latent factors (the reference's `ground_truth_data.num_factors`)."""
        return len(self.latent)

    def sample_factors(self, num: int, rs: np.random.RandomState) -> np.ndarray:
        """Returns latent factors [num, L] drawn as `SplitDiscreteStateSpace.sample_latent_factors`."""
        factors = np.zeros((num, len(self.latent)), dtype=np.int64)
        for pos, k in enumerate(self.latent):
            factors[:, pos] = rs.randint(self.factor_sizes[k], size=num)
        return factors

    def complete(self, latent_factors: np.ndarray, rs: np.random.RandomState) -> np.ndarray:
        """Returns all factors [n, K]: the latent ones given, the others drawn as `sample_all_factors`."""
        num = latent_factors.shape[0]
        all_factors = np.zeros((num, len(self.factor_sizes)), dtype=np.int64)
        all_factors[:, self.latent] = latent_factors
        for k in self.observed:
            all_factors[:, k] = rs.randint(self.factor_sizes[k], size=num)
        return all_factors

    def indices(self, all_factors: np.ndarray) -> np.ndarray:
        """Returns the flat image indices of factor rows [..., K] (shape [...])."""
        flat = all_factors.reshape(-1, len(self.factor_sizes))
        return np.asarray(self.dataset.index_of(flat), dtype=np.int64).reshape(all_factors.shape[:-1])

    def batch_factor_code(self, num_points: int, rs: np.random.RandomState, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Returns (image indices [N], latent factors [N, L]) as `utils.generate_batch_factor_code` draws them."""
        latent = np.zeros((num_points, len(self.latent)), dtype=np.int64)
        full = np.zeros((num_points, len(self.factor_sizes)), dtype=np.int64)
        i = 0
        while i < num_points:
            n = min(num_points - i, batch_size)
            latent[i : i + n] = self.sample_factors(n, rs)
            full[i : i + n] = self.complete(latent[i : i + n], rs)
            i += n
        return self.indices(full), latent

    def observations(self, num: int, rs: np.random.RandomState) -> np.ndarray:
        """Returns image indices [num] of one `sample_observations(num)` call (one draw of num points)."""
        return self.indices(self.complete(self.sample_factors(num, rs), rs))

    def fixed_factor_batches(self, num_points: int, batch_size: int, rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        """Returns (fixed factor [T], image indices [T, B]) as FactorVAE's `_generate_training_sample` draws them."""
        fixed = np.zeros(num_points, dtype=np.int64)
        full = np.zeros((num_points, batch_size, len(self.factor_sizes)), dtype=np.int64)
        for t in range(num_points):
            fixed[t] = rs.randint(self.num_factors)
            factors = self.sample_factors(batch_size, rs)
            factors[:, fixed[t]] = factors[0, fixed[t]]
            full[t] = self.complete(factors, rs)
        return fixed, self.indices(full)

    def shared_factor_pairs(self, num_points: int, batch_size: int, rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Returns (shared factor [T], indices [T, B], indices [T, B]) as BetaVAE's `_generate_training_sample`."""
        shared = np.zeros(num_points, dtype=np.int64)
        full_1 = np.zeros((num_points, batch_size, len(self.factor_sizes)), dtype=np.int64)
        full_2 = np.zeros_like(full_1)
        for t in range(num_points):
            shared[t] = rs.randint(self.num_factors)
            factors_1 = self.sample_factors(batch_size, rs)
            factors_2 = self.sample_factors(batch_size, rs)
            factors_2[:, shared[t]] = factors_1[:, shared[t]]
            full_1[t] = self.complete(factors_1, rs)
            full_2[t] = self.complete(factors_2, rs)
        return shared, self.indices(full_1), self.indices(full_2)
