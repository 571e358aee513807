from mtlens.measures.disentanglement import beta_vae_score, dci, factor_vae_score, irs, mig, modularity_explicitness, sap, unsupervised  # noqa: F401
