"""Training arrays derived from recorded sessions by a dataset config, and their samples.

``derive``: the pure core (raw session + config fields → arrays); ``cache``: those arrays
cached next to the raw session (memory-mapped, atomic, rebuilt when stale or damaged);
``storage``: stimulus storage dtypes and their on-device decoding; ``samples``: which bins
are samples and what each holds under VisionCore's ``keys_lags``.
"""
