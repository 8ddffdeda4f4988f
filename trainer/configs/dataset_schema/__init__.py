"""The dataset-config schema: VisionCore's dialect, importable without torch.

One schema for the trainer (load time) and the controller (before submit). ``ops`` holds the
transform and datafilter vocabulary (names, parameters); the rest of the package validates
the parent and per-session files.
"""
