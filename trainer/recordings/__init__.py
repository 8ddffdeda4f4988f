"""Recordings as a lab holds them: raw covariates per session and stimulus type.

A recording is what VisionCore's ``DictDataset`` files hold (``stim``, ``robs``, ``eyepos``,
``dpi_valid``, ``trial_inds``, ``t_bins`` at the source rate) plus what its session object
knows (cluster ids, each unit's missing-spike percentage over time). The training arrays are
*derived* from recordings by a dataset config's sampling, transforms and datafilters
(``trainer.data``); recordings themselves are never changed by a config.

``session`` is the in-memory form and its checks (pure); ``store`` reads and writes the
on-disk form (``files``: the atomic, checkable ``.npy`` machinery it shares with the
synthetic store); ``visioncore_import`` converts VisionCore's files (``visioncore_files``
reads them). The synthetic generator
(``trainer.synthetic``) writes the same form, so the whole pipeline runs without private data.
"""
