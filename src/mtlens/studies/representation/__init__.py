"""The science under the `decoding`, `autoencoders` and `geometry` studies (seeds 000 §4.2-4.3, 002).

Each study cell is one plain call:
- decoding: `decoding_cell(encoder, train, test, DecoderSettings(), seed)` (or `decoding_cell_for_run(store, run_id)`)
  -> reconstruction error and a trained probe; `traverse(probe, image, observed=codes)`, `reconstruct(probe, x)` for the figures;
- embeddings: `embedding_cell({label: encoder}, test_images, n_points, seed)` -> UMAP coordinates per encoder;
- auto-encoders: `table1_cell(representation, dataset, tasks, splits, seed)` -> heads RMSE (Table 1),
  `table6_cell(autoencoder, dataset, metrics, seed)` -> disentanglement metrics (Table 6);
- geometry: `encoder_geometry(label, codes, dataset, indices, targets)` and `pairwise_similarity(codes)`.
Encoders come from Python (any module mapping images to codes) or from the run store (`encoder_from_run`).
"""

from mtlens.studies.representation.autoencoders import (REPRESENTATIONS, AutoencoderSettings, HeadSettings,
                                                        HeadsResult, Table1Cell, fit_heads, representation_features,
                                                        table1_cell, table6_cell, train_autoencoder)
from mtlens.studies.representation.decoding import (DecoderSettings, DecodingResult, ReconstructionError, Traversal,
                                                    decoding_cell, decoding_cell_for_run, example_rows, reconstruct,
                                                    reconstruction_error, train_decoder, traverse)
from mtlens.studies.representation.embeddings import Embeddings, embedding_cell, umap_embedding
from mtlens.studies.representation.geometry import CATEGORICAL_FACTORS, EncoderGeometry, encoder_geometry, pairwise_similarity
from mtlens.studies.representation.images import ImageSplit, encode_split
from mtlens.studies.representation.sources import RunEncoder, autoencoder_run_config, encoder_from_run, run_split

__all__ = [
    "REPRESENTATIONS", "AutoencoderSettings", "HeadSettings", "HeadsResult", "Table1Cell", "fit_heads",
    "representation_features", "table1_cell", "table6_cell", "train_autoencoder",
    "DecoderSettings", "DecodingResult", "ReconstructionError", "Traversal", "decoding_cell", "decoding_cell_for_run",
    "example_rows",
    "reconstruct", "reconstruction_error", "train_decoder", "traverse",
    "Embeddings", "embedding_cell", "umap_embedding",
    "CATEGORICAL_FACTORS", "EncoderGeometry", "encoder_geometry", "pairwise_similarity",
    "ImageSplit", "encode_split", "RunEncoder", "autoencoder_run_config", "encoder_from_run", "run_split",
]
