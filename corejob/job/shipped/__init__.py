"""Config files from the user's machine, shipped with the job they configure.

``-m ~/my_model.yaml`` names a file a pod cannot see. corejob reads it here and puts its
text in the chart's ``configFiles`` value (:mod:`.files`); the chart renders it as a
ConfigMap mounted where the trainer reads it. The rendered job carries that ConfigMap as
an object it owns (:mod:`.owned`): a cluster backend creates it owned by the job (deleted
with it), a local backend copies it into the job's directory.
"""
