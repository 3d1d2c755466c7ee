"""The whole run over one run folder: its paths (:mod:`~attnpatterns.run.layout`), the stamp engine
(:mod:`~attnpatterns.run.stamps`), the profiles and run configuration (:mod:`~attnpatterns.run.profiles`) and the
stages as units (:mod:`~attnpatterns.run.pipeline`, ``attn run``)."""
